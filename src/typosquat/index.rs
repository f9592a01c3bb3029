//! A candidate index over one group of reference names (official images, the namespaces of a
//! registry, the repositories of a namespace), so that a lookup does not run the weighted
//! distance against every name in the group.
//!
//! Two names within a small weighted distance have skeletons (see [`super::distance::skeleton`])
//! within at most two plain edits, and two strings within `k` edits share a string reached from
//! both by at most `k` deletions (the "symmetric deletion" idea). The index stores a 64-bit
//! hash of every skeleton variant with up to [`MAX_DELETIONS`] characters deleted, sorted, and a
//! lookup hashes the query's own variants and collects the names behind equal hashes. Hash
//! collisions only add candidates; every candidate is then checked with the real distance.
//!
//! Variant hashes come from prefix hashes, so each variant costs O(1) instead of O(length), and
//! a directory over the top bits of the sorted hashes finds a hash in about two memory reads.
//! Small groups skip all this: below [`LINEAR_MAX`] names every name is a candidate.

use std::collections::HashMap;

use super::distance::{skeleton, without_separators};

/// Deletions per side; two plain edits is the most any budget in the detector allows.
const MAX_DELETIONS: usize = 2;
/// Skeletons longer than this get one deletion only: long names are rare and their variant
/// count grows with the square of the length.
const LONG_SKELETON: usize = 24;
/// Groups this small are scanned in full.
pub const LINEAR_MAX: usize = 24;

const BASE: u64 = 0x100_0000_01b3;

/// Names of one group, for exact lookups, lookups ignoring separators, and candidate search.
#[derive(Debug, Default)]
pub struct NameIndex {
    names: Vec<Box<str>>,
    exact: HashMap<Box<str>, u32>,
    /// Names with their separators removed (`hello-world` → `helloworld`).
    sepless: HashMap<Box<str>, u32>,
    /// Sorted variant hashes, each with the id of the name it came from in `ids`.
    keys: Vec<u64>,
    ids: Vec<u32>,
    /// `directory[b]` is the first position in `keys` whose top `bits` bits are at least `b`.
    directory: Vec<u32>,
    bits: u32,
}

// === impl NameIndex ===

impl NameIndex {
    /// Builds the index over `names`, which must not repeat.
    pub fn new(names: Vec<String>) -> NameIndex {
        let names: Vec<Box<str>> = names.into_iter().map(String::into_boxed_str).collect();
        let mut exact = HashMap::with_capacity(names.len());
        let mut sepless = HashMap::with_capacity(names.len());
        for (id, name) in names.iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            exact.insert(name.clone(), id);
            sepless
                .entry(without_separators(name).into_boxed_str())
                .or_insert(id);
        }
        let mut index = NameIndex {
            names,
            exact,
            sepless,
            keys: Vec::new(),
            ids: Vec::new(),
            directory: Vec::new(),
            bits: 0,
        };
        if index.names.len() >= LINEAR_MAX {
            let mut pairs: Vec<(u64, u32)> = Vec::new();
            let mut scratch = Scratch::default();
            for (id, name) in index.names.iter().enumerate() {
                scratch.variants_of(name);
                let id = u32::try_from(id).unwrap_or(u32::MAX);
                pairs.extend(scratch.variants.iter().map(|&h| (h, id)));
            }
            pairs.sort_unstable();
            pairs.dedup();
            index.keys = pairs.iter().map(|p| p.0).collect();
            index.ids = pairs.iter().map(|p| p.1).collect();
            index.build_directory();
        }
        index
    }

    /// About two keys per directory slot; the hashes are uniform, so slots stay small.
    fn build_directory(&mut self) {
        let bits = (self.keys.len() / 2).max(1).ilog2().clamp(1, 24);
        let slots = 1usize << bits;
        let mut directory = Vec::with_capacity(slots + 1);
        let mut at = 0;
        for slot in 0..slots as u64 {
            while at < self.keys.len() && self.keys[at] >> (64 - bits) < slot {
                at += 1;
            }
            directory.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        directory.push(u32::try_from(self.keys.len()).unwrap_or(u32::MAX));
        self.directory = directory;
        self.bits = bits;
    }

    /// Positions in `keys` holding `h`.
    fn find(&self, h: u64) -> std::ops::Range<usize> {
        let slot = (h >> (64 - self.bits)) as usize;
        let (from, to) = (
            self.directory[slot] as usize,
            self.directory[slot + 1] as usize,
        );
        let bucket = &self.keys[from..to];
        let start = from + bucket.partition_point(|&k| k < h);
        let end = from + bucket.partition_point(|&k| k <= h);
        start..end
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.exact.contains_key(name)
    }

    /// The name that equals `name` once separators are removed from both.
    pub fn without_separators(&self, name: &str) -> Option<&str> {
        self.sepless
            .get(without_separators(name).as_str())
            .map(|&id| self.name(id))
    }

    /// Ids of the names that may be within two skeleton edits of `query`, sorted, without
    /// duplicates. The buffers in `scratch` are reused between calls.
    pub fn candidates<'s>(&self, query: &str, scratch: &'s mut Scratch) -> &'s [u32] {
        scratch.ids.clear();
        if self.keys.is_empty() {
            let all = 0..u32::try_from(self.names.len()).unwrap_or(u32::MAX);
            scratch.ids.extend(all);
            return &scratch.ids;
        }
        scratch.variants_of(query);
        let Scratch { variants, ids, .. } = scratch;
        for &h in variants.iter() {
            ids.extend_from_slice(&self.ids[self.find(h)]);
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Heap bytes held (approximately: hash tables are counted at their capacity with a byte
    /// of control data per slot), for the benchmark's memory report.
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self.names.iter().map(|n| n.len()).sum();
        let slot = std::mem::size_of::<(Box<str>, u32)>() + 1;
        self.names.capacity() * std::mem::size_of::<Box<str>>()
            + 3 * text
            + (self.exact.capacity() + self.sepless.capacity()) * slot
            + self.keys.capacity() * 8
            + self.ids.capacity() * 4
            + self.directory.capacity() * 4
    }
}

/// Buffers reused across lookups.
#[derive(Debug, Default)]
pub struct Scratch {
    skeleton: Vec<u8>,
    plain: Vec<u8>,
    variants: Vec<u64>,
    more: Vec<u64>,
    ids: Vec<u32>,
}

impl Scratch {
    /// Fills `variants` with the variant hashes of `name`'s skeleton with look-alike pairs
    /// folded, and of its skeleton without, when that differs.
    fn variants_of(&mut self, name: &str) {
        skeleton(name.as_bytes(), true, &mut self.skeleton);
        variant_hashes(&self.skeleton, &mut self.variants);
        skeleton(name.as_bytes(), false, &mut self.plain);
        if self.plain != self.skeleton {
            variant_hashes(&self.plain, &mut self.more);
            self.variants.extend_from_slice(&self.more);
            self.variants.sort_unstable();
            self.variants.dedup();
        }
    }
}

/// Hashes of `s` and of every string made from it by deleting up to [`MAX_DELETIONS`]
/// characters, sorted and deduplicated.
fn variant_hashes(s: &[u8], out: &mut Vec<u64>) {
    out.clear();
    let n = s.len();
    // prefix[k] is the hash of s[..k]; power[k] is BASE^k.
    let mut prefix = Vec::with_capacity(n + 1);
    let mut power = Vec::with_capacity(n + 1);
    prefix.push(0u64);
    power.push(1u64);
    for (k, &c) in s.iter().enumerate() {
        prefix.push(prefix[k].wrapping_mul(BASE).wrapping_add(u64::from(c) + 1));
        power.push(power[k].wrapping_mul(BASE));
    }
    // Hash of s[l..r].
    let sub = |l: usize, r: usize| prefix[r].wrapping_sub(prefix[l].wrapping_mul(power[r - l]));
    let cat = |h1: u64, h2: u64, len2: usize| h1.wrapping_mul(power[len2]).wrapping_add(h2);
    out.push(finish(prefix[n], n));
    let deletions = if n > LONG_SKELETON { 1 } else { MAX_DELETIONS };
    for i in 0..n {
        let one = cat(sub(0, i), sub(i + 1, n), n - i - 1);
        out.push(finish(one, n - 1));
        if deletions < 2 {
            continue;
        }
        for j in i + 1..n {
            let left = cat(sub(0, i), sub(i + 1, j), j - i - 1);
            let two = cat(left, sub(j + 1, n), n - j - 1);
            out.push(finish(two, n - 2));
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// Mixes the length in and spreads the bits (splitmix64's finaliser).
fn finish(h: u64, len: usize) -> u64 {
    let mut z = h ^ ((len as u64) << 56);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_variants(s: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![s.to_vec()];
        for i in 0..s.len() {
            let mut one = s.to_vec();
            one.remove(i);
            for j in i..one.len() {
                let mut two = one.clone();
                two.remove(j);
                out.push(two);
            }
            out.push(one);
        }
        out
    }

    #[test]
    fn prefix_hashes_equal_direct_hashes_of_the_shortened_strings() {
        let s = b"postgresql";
        let mut fast = Vec::new();
        variant_hashes(s, &mut fast);
        let naive = naive_variants(s);
        for v in &naive {
            let mut p = 0u64;
            for &c in v {
                p = p.wrapping_mul(BASE).wrapping_add(u64::from(c) + 1);
            }
            assert!(fast.contains(&finish(p, v.len())), "{v:?}");
        }
        let mut distinct = naive;
        distinct.sort();
        distinct.dedup();
        assert_eq!(fast.len(), distinct.len());
    }

    #[test]
    fn finds_names_within_two_edits_and_not_unrelated_ones() {
        let mut names: Vec<String> = (0..200).map(|i| format!("filler{i}")).collect();
        names.extend(
            ["nginx", "postgres", "elasticsearch", "arangodb", "kyverno"].map(String::from),
        );
        let index = NameIndex::new(names);
        let mut scratch = Scratch::default();
        for (query, want) in [
            ("ngnix", "nginx"),
            ("ngnx", "nginx"),
            ("postgers", "postgres"),
            ("elasticsearh", "elasticsearch"),
            ("e1asticsearch", "elasticsearch"),
            ("arngodb", "arangodb"),
            ("kyveron", "kyverno"),
        ] {
            let found = index.candidates(query, &mut scratch);
            assert!(
                found.iter().any(|&id| index.name(id) == want),
                "{query} should find {want}"
            );
        }
        assert!(index.candidates("zzzzzzzzzz", &mut scratch).is_empty());
        assert_eq!(
            index.without_separators("elastic_search"),
            Some("elasticsearch")
        );
        assert!(index.contains("nginx") && !index.contains("ngnix"));
    }

    #[test]
    fn small_groups_are_scanned_in_full() {
        let index = NameIndex::new(vec!["a".into(), "b".into()]);
        assert_eq!(index.candidates("zzz", &mut Scratch::default()), [0, 1]);
    }
}
