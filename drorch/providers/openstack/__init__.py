"""OpenStack (NHN Cloud) services drorch uses, through the unmodified openstacksdk.

``connection.connect`` turns a site's config into an authenticated connection;
``compute``, ``loadbalancer`` and ``nks`` are thin typed wrappers over it, like
the AWS modules are over boto3.
"""
