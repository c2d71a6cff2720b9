"""The pure core: one message validated and folded into a double, a batch planned,
the oracle and the what-if. Imports no faust, Kafka or SQLAlchemy (import-linter)."""
