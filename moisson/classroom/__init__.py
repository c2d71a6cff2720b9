"""`moisson classroom`: the room is the city.

Students' phones join a real pipeline: each tap is a sensor event from the same sensor
modules, schemas and topics as the simulated city's, stamped on the session's clock;
the harvester scores it, and the sanctions it emits close the gates on the students
as on everyone. The pure parts (the clock, the menu of choices, the room's rules of
entry) import no web framework, Kafka or SQLAlchemy; ``server`` and ``session`` are
the edges.
"""
