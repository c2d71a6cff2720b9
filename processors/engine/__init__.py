"""The faust side: the app, the agent that carries out planned batches, the outbox,
the local store, and every touch of faust's private API (:mod:`.faust_patches`)."""
