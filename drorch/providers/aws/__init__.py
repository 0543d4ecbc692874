"""AWS services drorch uses, each a thin typed wrapper over boto3."""
