"""Actions, one module per service. Each is idempotent: running it twice is safe."""
