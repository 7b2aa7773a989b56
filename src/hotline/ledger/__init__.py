"""The ledger: entry encoding, RFC 9162 Merkle tree, proofs, checkpoints, cosignatures,
transcripts and their offline verification. Pure code: no database, network or asyncio.
"""
