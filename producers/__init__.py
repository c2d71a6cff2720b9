"""Sensors: a seeded simulated population and the four sensor networks that watch it."""
