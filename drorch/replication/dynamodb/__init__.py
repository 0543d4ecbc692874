"""drorch's own DynamoDB cross-region replicator, carrying ``mode: stream`` tables from their DynamoDB Streams.

For estates where global tables are not an option (and for the lab, whose moto does
not replicate): ``tables`` checks the copies before anything is written, ``shards``
reads a stream in order, ``apply`` turns each record into a conditional write that
never moves an item backwards, ``replicator`` runs the loop with checkpoints (its
``stats`` say what a round did), ``direction`` decides who ships to whom,
``backfill`` copies a table and ``verify`` compares the copies.
"""
