"""State replication: MySQL heartbeats and topology, DynamoDB probe items."""
