"""Configuration for real consortium networks: Besu QBFT validators and an IPFS Cluster.

    from fullchain.nodeconfig import besu, permissions, ipfs_cluster, validate
    net = besu.generate(Path("net"), validators=4, allowlists=permissions.from_chain(fc.consortium))
    report = validate.validate(Path("net"))

Nothing here prints; node keys, cluster secrets and identities are written 0600 and never
returned in a printable form.
"""
