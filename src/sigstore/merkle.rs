//! RFC 6962 / RFC 9162 Merkle tree hashing and inclusion proofs (trust-formats.md §2.5).
//!
//! Rekor v1 and v2 both build SHA-256 trees with domain-separated leaf (0x00) and node (0x01)
//! hashes, so a leaf can never be passed off as an interior node. An inclusion proof shows
//! that one leaf is at a given index of the tree whose root the log signed in a checkpoint.

use sha2::{Digest, Sha256};

/// Every hash in a SHA-256 tree is exactly this long.
pub const HASH_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error("inclusion proof index {index} is not inside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("inclusion proof has a hash of {0} bytes, expected {HASH_LEN}")]
    HashLength(usize),
    #[error("inclusion proof has the wrong number of hashes for its index and tree size")]
    ProofLength,
    #[error("inclusion proof does not lead to the checkpoint root")]
    RootMismatch,
}

/// `SHA-256(0x00 ‖ data)`: the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> [u8; HASH_LEN] {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &[u8], right: &[u8]) -> [u8; HASH_LEN] {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Checks that `leaf_hash` is the leaf at `index` in the tree of `size` leaves whose root is
/// `root`, given the audit path `proof` (RFC 9162 §2.1.3.2).
///
/// The proof must have exactly the length the index and size call for: extra or missing
/// hashes are an error, not ignored, so one proof cannot be read two ways.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[Vec<u8>],
    root: &[u8],
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    for h in std::iter::once(leaf_hash)
        .chain(std::iter::once(root))
        .chain(proof.iter().map(Vec::as_slice))
    {
        if h.len() != HASH_LEN {
            return Err(MerkleError::HashLength(h.len()));
        }
    }

    // `fn_` walks the leaf's position up the tree, `sn` the last leaf's position; where they
    // meet on the right edge the sibling is missing and the level is skipped.
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r: [u8; HASH_LEN] = leaf_hash
        .try_into()
        .map_err(|_| MerkleError::HashLength(leaf_hash.len()))?;
    for p in proof {
        if sn == 0 {
            return Err(MerkleError::ProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::ProofLength);
    }
    if r.as_slice() != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6962 §2.1 Merkle tree hash, computed directly (split at the largest power of
    /// two below n), to check proofs against an independent construction.
    fn mth(leaves: &[Vec<u8>]) -> [u8; HASH_LEN] {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// RFC 6962 §2.1.1 PATH(m, D[n]).
    fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]).to_vec());
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]).to_vec());
            p
        }
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    #[test]
    fn every_leaf_of_small_trees_verifies() {
        for n in 1..=17 {
            let ls = leaves(n);
            let root = mth(&ls);
            for m in 0..n {
                let proof = path(m, &ls);
                verify_inclusion(m as u64, n as u64, &leaf_hash(&ls[m]), &proof, &root)
                    .unwrap_or_else(|e| panic!("leaf {m} of {n}: {e}"));
            }
        }
    }

    #[test]
    fn hand_built_three_leaf_tree() {
        // root = H(H(l0, l1), l2): leaf 2 is proved by the single hash H(l0, l1).
        let (a, b, c) = (leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c"));
        let ab = node_hash(&a, &b);
        let root = node_hash(&ab, &c);
        assert_eq!(verify_inclusion(2, 3, &c, &[ab.to_vec()], &root), Ok(()));
        assert_eq!(
            verify_inclusion(0, 3, &a, &[b.to_vec(), c.to_vec()], &root),
            Ok(())
        );
        // The same path claimed for a different index does not reach the root.
        assert_eq!(
            verify_inclusion(1, 3, &a, &[b.to_vec(), c.to_vec()], &root),
            Err(MerkleError::RootMismatch)
        );
    }

    #[test]
    fn tampering_is_rejected() {
        let ls = leaves(11);
        let root = mth(&ls);
        let proof = path(5, &ls);
        let leaf = leaf_hash(&ls[5]);

        let mut flipped = proof.clone();
        flipped[1][0] ^= 1;
        assert_eq!(
            verify_inclusion(5, 11, &leaf, &flipped, &root),
            Err(MerkleError::RootMismatch)
        );

        let mut longer = proof.clone();
        longer.push(vec![0; HASH_LEN]);
        assert_eq!(
            verify_inclusion(5, 11, &leaf, &longer, &root),
            Err(MerkleError::ProofLength)
        );
        assert_eq!(
            verify_inclusion(5, 11, &leaf, &proof[..proof.len() - 1], &root),
            Err(MerkleError::ProofLength)
        );
        assert_eq!(
            verify_inclusion(11, 11, &leaf, &proof, &root),
            Err(MerkleError::IndexOutOfRange {
                index: 11,
                size: 11
            })
        );
        let mut short = proof.clone();
        short[0].pop();
        assert_eq!(
            verify_inclusion(5, 11, &leaf, &short, &root),
            Err(MerkleError::HashLength(31))
        );
        assert_eq!(
            verify_inclusion(5, 11, &leaf, &proof, &root[..16]),
            Err(MerkleError::HashLength(16))
        );
    }

    #[test]
    fn single_leaf_tree_has_an_empty_proof() {
        let leaf = leaf_hash(b"only");
        assert_eq!(verify_inclusion(0, 1, &leaf, &[], &leaf), Ok(()));
        assert_eq!(
            verify_inclusion(0, 0, &leaf, &[], &leaf),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        );
    }
}
