//! Weighted edit distance between two name parts, tuned for how image names get mistyped or
//! imitated; the "skeleton" the index searches on; and the count of real (not look-alike)
//! edits that bounds how many independent slips a near-miss may contain.
//!
//! Costs are in quarter steps ([`Cost`]): an ordinary insertion or deletion costs 4, so the
//! cheap edits below cost a fraction of one. The distance is a restricted Damerau–Levenshtein
//! (optimal string alignment) over bytes, symmetric by construction: the cost of an extra
//! character depends on its neighbours in the string that has it, whichever side that is.
//!
//! | edit | example | cost |
//! |---|---|---|
//! | look-alike character (`0/o`, `1/l/i`, `5/s`, `u/v`, …) | `alp1ne` | 1 |
//! | look-alike pair (`rn/m`, `vv/w`, `cl/d`) | `rnysql` | 1 |
//! | separator added, dropped or swapped (`-`, `_`, `.`) | `hello_world` | 1 |
//! | doubled or undoubled letter | `nginxx`, `wordpres` | 1 |
//! | keyboard-neighbour substitution (QWERTY) | `nginc` | 2 |
//! | sound-alike or mirrored letter (`i/y`, `c/k`, `s/z`, `b/d`, `p/q`) | `sonatipe` | 2 |
//! | transposition of neighbours | `ngnix` | 2 |
//! | one vowel for another | `ubunto` | 3 |
//! | extra letter next to a keyboard neighbour | `alpline` | 3 |
//! | other insertion or deletion | `httd` | 4 |
//! | other substitution | `portainer-ee` | 5 |
//!
//! A letter counts as doubled only when it repeats the letter before it, so `nginxx` is
//! cheap but `portainer-ee` from `portainer` is not.
//!
//! Everything here is pure; [`distance`], which runs on every candidate, does not allocate for
//! parts up to [`STACK_LEN`] bytes.

/// Edit cost in quarter steps.
pub type Cost = u16;

/// One ordinary insertion or deletion.
pub const INDEL: Cost = 4;
const LOOK_ALIKE: Cost = 1;
const SEPARATOR: Cost = 1;
const DOUBLED: Cost = 1;
const KEYBOARD: Cost = 2;
const SOUND_ALIKE: Cost = 2;
const TRANSPOSE: Cost = 2;
const VOWEL: Cost = 3;
const KEYBOARD_INDEL: Cost = 3;
const SUBSTITUTE: Cost = 5;

/// Parts up to this length are compared without touching the heap.
pub const STACK_LEN: usize = 64;

/// Two-character sequences that read as one character in most fonts.
const PAIRS: [(&[u8; 2], u8); 3] = [(b"rn", b'm'), (b"vv", b'w'), (b"cl", b'd')];

/// Separators allowed inside repository path components.
pub fn is_separator(c: u8) -> bool {
    matches!(c, b'-' | b'_' | b'.')
}

/// The class of characters that look alike: every member maps to one representative.
pub fn glyph(c: u8) -> u8 {
    match c {
        b'0' | b'o' => b'o',
        b'1' | b'l' | b'i' | b'|' | b'!' => b'l',
        b'3' | b'e' => b'e',
        b'4' | b'a' => b'a',
        b'5' | b's' => b's',
        b'7' | b't' => b't',
        b'8' | b'b' => b'b',
        b'9' | b'g' => b'g',
        b'u' | b'v' => b'u',
        c => c,
    }
}

/// Letters that sound alike or are mirror images of each other.
fn sound_alike(x: u8, y: u8) -> bool {
    matches!(
        (x.min(y), x.max(y)),
        (b'i', b'y') | (b'c', b'k') | (b's', b'z') | (b'k', b'q') | (b'b', b'd') | (b'p', b'q')
    )
}

pub fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

// === keyboard adjacency ===

const ROWS: [&[u8]; 4] = [b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];

/// `ADJACENT[x]` has bit `y` set when keys `x` and `y` touch on a QWERTY keyboard. Each row
/// sits half a key to the right of the one above it, so key `c` of row `r` touches keys `c`
/// and `c + 1` of row `r - 1` and keys `c - 1` and `c` of row `r + 1`.
static ADJACENT: [u128; 128] = adjacency();

const fn adjacency() -> [u128; 128] {
    let mut table = [0u128; 128];
    let mut r = 0;
    while r < ROWS.len() {
        let row = ROWS[r];
        let mut c = 0;
        while c < row.len() {
            let key = row[c] as usize;
            if c + 1 < row.len() {
                table[key] |= 1 << row[c + 1];
                table[row[c + 1] as usize] |= 1 << key;
            }
            if r + 1 < ROWS.len() {
                let below = ROWS[r + 1];
                if c < below.len() {
                    table[key] |= 1 << below[c];
                    table[below[c] as usize] |= 1 << key;
                }
                if c >= 1 && c - 1 < below.len() {
                    table[key] |= 1 << below[c - 1];
                    table[below[c - 1] as usize] |= 1 << key;
                }
            }
            c += 1;
        }
        r += 1;
    }
    table
}

/// Whether two keys are neighbours on a QWERTY keyboard.
pub fn keyboard_adjacent(x: u8, y: u8) -> bool {
    x < 128 && y < 128 && ADJACENT[x as usize] & (1u128 << y) != 0
}

// === costs ===

/// Cost of turning `x` into `y`.
pub fn substitution(x: u8, y: u8) -> Cost {
    if x == y {
        0
    } else if is_separator(x) && is_separator(y) {
        SEPARATOR
    } else if glyph(x) == glyph(y) {
        LOOK_ALIKE
    } else if keyboard_adjacent(x, y) {
        KEYBOARD
    } else if sound_alike(x, y) {
        SOUND_ALIKE
    } else if is_vowel(x) && is_vowel(y) {
        VOWEL
    } else {
        SUBSTITUTE
    }
}

/// Cost of the character at `i` of `s` being extra (inserted into `s`, or missing from the
/// other string), judged by its neighbours in `s`.
fn extra(s: &[u8], i: usize) -> Cost {
    let c = s[i];
    let prev = i.checked_sub(1).map(|j| s[j]);
    let next = s.get(i + 1).copied();
    if is_separator(c) {
        SEPARATOR
    } else if prev == Some(c) {
        DOUBLED
    } else if prev.is_some_and(|p| keyboard_adjacent(c, p))
        || next.is_some_and(|n| keyboard_adjacent(c, n))
    {
        KEYBOARD_INDEL
    } else {
        INDEL
    }
}

/// Whether `two` is a look-alike pair for `one` (`rn` for `m`).
fn pair_for(two: &[u8], one: u8) -> bool {
    PAIRS.iter().any(|(p, m)| p[..] == *two && *m == one)
}

/// The weighted distance between `a` and `b`, or `None` once it is certain to exceed
/// `budget`.
pub fn distance(a: &[u8], b: &[u8], budget: Cost) -> Option<Cost> {
    if a.len() <= STACK_LEN && b.len() <= STACK_LEN {
        let mut rows = [0 as Cost; 3 * (STACK_LEN + 1)];
        let mut extra_a = [0 as Cost; STACK_LEN];
        let mut extra_b = [0 as Cost; STACK_LEN];
        run(a, b, budget, &mut rows, &mut extra_a, &mut extra_b)
    } else {
        let mut rows = vec![0 as Cost; 3 * (b.len() + 1)];
        let mut extra_a = vec![0 as Cost; a.len()];
        let mut extra_b = vec![0 as Cost; b.len()];
        run(a, b, budget, &mut rows, &mut extra_a, &mut extra_b)
    }
}

/// The dynamic programme over three rolling rows (the third serves transpositions and
/// look-alike pairs, which look two characters back).
fn run(
    a: &[u8],
    b: &[u8],
    budget: Cost,
    rows: &mut [Cost],
    extra_a: &mut [Cost],
    extra_b: &mut [Cost],
) -> Option<Cost> {
    let (la, lb) = (a.len(), b.len());
    for (i, e) in extra_a.iter_mut().enumerate().take(la) {
        *e = extra(a, i);
    }
    for (j, e) in extra_b.iter_mut().enumerate().take(lb) {
        *e = extra(b, j);
    }
    let width = lb + 1;
    let row = |k: usize| (k % 3) * width;
    rows[0] = 0;
    for j in 1..=lb {
        rows[j] = rows[j - 1].saturating_add(extra_b[j - 1]);
    }
    for i in 1..=la {
        let (cur, prev, prev2) = (row(i), row(i - 1), row(i + 1));
        rows[cur] = rows[prev].saturating_add(extra_a[i - 1]);
        let mut best = rows[cur];
        for j in 1..=lb {
            let (x, y) = (a[i - 1], b[j - 1]);
            let mut d = rows[prev + j - 1].saturating_add(substitution(x, y));
            d = d.min(rows[prev + j].saturating_add(extra_a[i - 1]));
            d = d.min(rows[cur + j - 1].saturating_add(extra_b[j - 1]));
            if i >= 2 && j >= 2 {
                if x == b[j - 2] && a[i - 2] == y && x != y {
                    d = d.min(rows[prev2 + j - 2].saturating_add(TRANSPOSE));
                }
                if pair_for(&a[i - 2..i], y) {
                    d = d.min(rows[prev2 + j - 1].saturating_add(LOOK_ALIKE));
                }
                if pair_for(&b[j - 2..j], x) {
                    d = d.min(rows[prev + j - 2].saturating_add(LOOK_ALIKE));
                }
            } else if i >= 2 && pair_for(&a[i - 2..i], y) {
                d = d.min(rows[prev2 + j - 1].saturating_add(LOOK_ALIKE));
            } else if j >= 2 && pair_for(&b[j - 2..j], x) {
                d = d.min(rows[prev + j - 2].saturating_add(LOOK_ALIKE));
            }
            rows[cur + j] = d;
            best = best.min(d);
        }
        // Every later cell is at least the smallest of this row and the one before it (a
        // transposition or pair reaches back two rows).
        let floor = best.min(if i >= 2 {
            rows[prev..prev + width]
                .iter()
                .copied()
                .min()
                .unwrap_or(Cost::MAX)
        } else {
            Cost::MAX
        });
        if floor > budget {
            return None;
        }
    }
    let d = rows[row(la) + lb];
    (d <= budget).then_some(d)
}

/// The skeleton of a name part: look-alike characters (and, with `pairs`, look-alike pairs)
/// folded to one representative, separators dropped and runs of one character collapsed.
/// Edits that cost one quarter step vanish in it, so two parts within a small [`distance`]
/// have skeletons within one or two plain edits of each other, which is what the index
/// searches for. An edit next to a pair can make or break it (`arangodb`/`arngodb`), so the
/// index uses the skeletons with and without pairs.
pub fn skeleton(s: &[u8], pairs: bool, out: &mut Vec<u8>) {
    fold(s, true, pairs, out);
}

/// Folds look-alike characters and, with `pairs`, look-alike pairs; drops separators and,
/// with `collapse`, runs of one character. Pairs are read after replacing digit and symbol
/// stand-ins only (`c1` is `cl`, so `d`), not whole look-alike classes (`vu` is not `vv`).
fn fold(s: &[u8], collapse: bool, pairs: bool, out: &mut Vec<u8>) {
    let stand_in = |c: u8| match c {
        b'1' | b'|' | b'!' => b'l',
        b'0' => b'o',
        c => c,
    };
    out.clear();
    let mut i = 0;
    while i < s.len() {
        let g = glyph(s[i]);
        let pair = s.get(i + 1).filter(|_| pairs).and_then(|&next| {
            PAIRS
                .iter()
                .find(|(p, _)| p[0] == stand_in(s[i]) && p[1] == stand_in(next))
                .map(|(_, m)| *m)
        });
        let (c, step) = match pair {
            Some(m) => (m, 2),
            None => (g, 1),
        };
        i += step;
        if is_separator(c) || collapse && out.last() == Some(&c) {
            continue;
        }
        out.push(c);
    }
}

/// The number of real edits between `a` and `b`: the plain restricted Damerau–Levenshtein
/// distance once look-alikes are folded and separators dropped (so those edits vanish), or
/// `None` above `limit`. Runs are not collapsed here, so a doubled letter counts as an edit.
/// Pairs are folded and not folded, and the smaller count wins: a transposition can make or
/// break a pair (`calico`/`calcio` has `cl`, `kyverno`/`kyveron` loses `rn`).
pub fn real_edits(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    [true, false]
        .into_iter()
        .filter_map(|pairs| {
            fold(a, false, pairs, &mut sa);
            fold(b, false, pairs, &mut sb);
            plain(&sa, &sb, limit)
        })
        .min()
}

/// Plain restricted Damerau–Levenshtein distance, or `None` above `limit`.
fn plain(sa: &[u8], sb: &[u8], limit: usize) -> Option<usize> {
    if sa.len().abs_diff(sb.len()) > limit {
        return None;
    }
    let width = sb.len() + 1;
    let mut rows = vec![0usize; 3 * width];
    let row = |k: usize| (k % 3) * width;
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=sa.len() {
        let (cur, prev, prev2) = (row(i), row(i - 1), row(i + 1));
        rows[cur] = i;
        for j in 1..width {
            let same = usize::from(sa[i - 1] != sb[j - 1]);
            let mut d = (rows[prev + j - 1] + same)
                .min(rows[prev + j] + 1)
                .min(rows[cur + j - 1] + 1);
            if i >= 2 && j >= 2 && sa[i - 1] == sb[j - 2] && sa[i - 2] == sb[j - 1] {
                d = d.min(rows[prev2 + j - 2] + 1);
            }
            rows[cur + j] = d;
        }
    }
    let d = rows[row(sa.len()) + sb.len()];
    (d <= limit).then_some(d)
}

/// `s` without separators.
pub fn without_separators(s: &str) -> String {
    s.bytes()
        .filter(|&c| !is_separator(c))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &str, b: &str) -> Option<Cost> {
        distance(a.as_bytes(), b.as_bytes(), Cost::MAX - 1)
    }

    fn sk(s: &str) -> String {
        let mut out = Vec::new();
        skeleton(s.as_bytes(), true, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_edit_class_costs_what_the_table_says() {
        let cases = [
            ("nginx", "nginx", 0),
            ("alp1ne", "alpine", LOOK_ALIKE),
            ("m0ngo", "mongo", LOOK_ALIKE),
            ("rnysql", "mysql", LOOK_ALIKE),
            ("bitnarni", "bitnami", LOOK_ALIKE),
            ("hello_world", "hello-world", SEPARATOR),
            ("helloworld", "hello-world", SEPARATOR),
            ("nginxx", "nginx", DOUBLED),
            ("wordpres", "wordpress", DOUBLED),
            ("nginc", "nginx", KEYBOARD),
            ("sonatipe", "sonatype", SOUND_ALIKE),
            ("ngnix", "nginx", TRANSPOSE),
            ("hashicorq", "hashicorp", SOUND_ALIKE),
            ("ubunto", "ubuntu", VOWEL),
            ("alpline", "alpine", KEYBOARD_INDEL),
            ("httd", "httpd", INDEL),
            ("portainer-ee", "portainer-ce", SUBSTITUTE),
            ("portainer-ee", "portainer", SEPARATOR + INDEL + DOUBLED),
        ];
        for (a, b, want) in cases {
            assert_eq!(d(a, b), Some(want), "{a} vs {b}");
        }
    }

    #[test]
    fn distance_is_symmetric() {
        let words = [
            "nginx",
            "ngnix",
            "alpine",
            "alpline",
            "rnysql",
            "mysql",
            "hello-world",
            "helloworld",
            "redis",
            "reddis",
            "radarr",
            "readarr",
            "mongo",
            "mono",
            "k6",
            "xk6",
            "",
            "a",
        ];
        for a in words {
            for b in words {
                assert_eq!(d(a, b), d(b, a), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn budget_cuts_the_computation_short_but_never_changes_a_result_within_it() {
        assert_eq!(distance(b"elasticsearch", b"kibana", 4), None);
        assert_eq!(distance(b"ngnix", b"nginx", 2), Some(2));
        assert_eq!(distance(b"ngnix", b"nginx", 1), None);
        let long = "a".repeat(100);
        let longer = format!("{long}b");
        assert_eq!(
            distance(long.as_bytes(), longer.as_bytes(), 10),
            Some(INDEL)
        );
    }

    #[test]
    fn keyboard_neighbours_follow_qwerty() {
        for (x, y) in [
            ("q", "w"),
            ("e", "s"),
            ("e", "d"),
            ("s", "z"),
            ("p", "l"),
            ("m", "n"),
        ] {
            assert!(
                keyboard_adjacent(x.as_bytes()[0], y.as_bytes()[0]),
                "{x}{y}"
            );
        }
        for (x, y) in [("q", "p"), ("a", "m"), ("c", "e"), ("i", "h")] {
            assert!(
                !keyboard_adjacent(x.as_bytes()[0], y.as_bytes()[0]),
                "{x}{y}"
            );
        }
    }

    #[test]
    fn real_edits_ignore_the_cheap_ones() {
        let e = |a: &str, b: &str| real_edits(a.as_bytes(), b.as_bytes(), 5);
        assert_eq!(e("rnysql", "mysql"), Some(0));
        assert_eq!(e("hello_world", "helloworld"), Some(0));
        assert_eq!(e("c1oudera", "cloudera"), Some(0));
        assert_eq!(e("ngnix", "nginx"), Some(1));
        assert_eq!(e("ceery", "celery"), Some(1));
        assert_eq!(e("nginxx", "nginx"), Some(1));
        assert_eq!(e("calcio", "calico"), Some(1));
        assert_eq!(e("kyveron", "kyverno"), Some(1));
        assert_eq!(e("minio", "n8nio"), Some(2));
        assert_eq!(real_edits(b"minio", b"n8nio", 1), None);
    }

    #[test]
    fn skeleton_erases_the_cheap_edits() {
        assert_eq!(sk("alp1ne"), sk("alpine"));
        assert_eq!(sk("rnysql"), sk("mysql"));
        assert_eq!(sk("hello_world"), sk("helloworld"));
        assert_eq!(sk("bussybox"), sk("busybox"));
        assert_eq!(sk("ubuntv"), sk("ubuntu"));
        assert_eq!(sk("keyc1oak"), sk("keycloak"));
        assert_eq!(sk("ttuum").len(), 3, "uu is not vv");
        assert_ne!(sk("ngnix"), sk("nginx"));
    }
}
