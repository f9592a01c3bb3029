//! The resemblance rules: whether one part of a name (a repository, a namespace) imitates a
//! name in a group of reference names, and how. Each rule is a small function; the `*_world`
//! functions at the end combine them for the three contexts a part can be in, which differ in
//! how much an unknown near-miss should be trusted:
//!
//! - **closed**: `library/` and the per-architecture namespaces, where only Docker publishes
//!   and every real name is in the reference set. Any resemblance to an official name is a
//!   flag: typos, separators, plurals, version suffixes and extra words alike.
//! - **vendor**: a known publisher's namespace. The publisher owns it and ships related images
//!   (`bitnami/redis-sentinel`, `sonatype/nexus` next to `nexus3`, `grafana/mimirtool`), so
//!   only typos, separator and plural variants and deceptive extra words (`-latest`,
//!   `-official`) are flags, and version numbers are not.
//! - **namespace**: an unknown Docker Hub namespace compared with known ones. Anyone can
//!   register it, so typos, separators, plurals and a known name plus a word that claims
//!   authority (`grafana-labs`, `bitnamiofficial`, `docker123321`) are flags, while a known
//!   name plus an ordinary word (`jupyterhub`, `alpinelinux`) is not.

use super::distance::{self, distance, glyph, is_separator, is_vowel, keyboard_adjacent, Cost};
use super::index::{NameIndex, Scratch};

/// How a name differs from the one it imitates; shown in the verdict's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LookAlike,
    Separator,
    Repetition,
    Transposition,
    Omission,
    Insertion,
    Keyboard,
    Vowel,
    Misspelling,
    Plural,
    Affix,
    VersionSuffix,
    OfficialLooking,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::LookAlike => "look-alike characters",
            Kind::Separator => "different separators",
            Kind::Repetition => "doubled or dropped repeated letter",
            Kind::Transposition => "swapped letters",
            Kind::Omission => "missing letter",
            Kind::Insertion => "extra letter",
            Kind::Keyboard => "keyboard typo",
            Kind::Vowel => "wrong vowel",
            Kind::Misspelling => "misspelling",
            Kind::Plural => "plural or singular form",
            Kind::Affix => "extra word",
            Kind::VersionSuffix => "added version number",
            Kind::OfficialLooking => "added word or number claiming authority",
        }
    }
}

/// A reference name that a part imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub target: String,
    pub kind: Kind,
}

impl Match {
    fn new(target: &str, kind: Kind) -> Match {
        Match {
            target: target.to_owned(),
            kind,
        }
    }
}

/// Words that add nothing but false authority or packaging to an image name.
const FILLER_WORDS: [&str; 22] = [
    "official",
    "offical",
    "latest",
    "original",
    "real",
    "secure",
    "verified",
    "trusted",
    "new",
    "free",
    "docker",
    "image",
    "img",
    "container",
    "hub",
    "server",
    "base",
    "linux",
    "db",
    "js",
    "lang",
    "app",
];

/// Words that no publisher adds to one of its own image names to make a new image: claims of
/// authority or freshness, and packaging words (every image is a container image). `docker`
/// is not one: `docker-<tool>` images are common.
const DECEPTIVE_REPO_WORDS: [&str; 14] = [
    "official",
    "offical",
    "latest",
    "original",
    "real",
    "secure",
    "verified",
    "trusted",
    "new",
    "patched",
    "fixed",
    "image",
    "img",
    "container",
];

/// Words that, added to a publisher's name in any way, claim to be that publisher's official
/// or checked account: `bitnamiofficial`, `dockerlibrary`.
const CLAIM_AFFIXES: [&str; 18] = [
    "official",
    "offical",
    "oficial",
    "officials",
    "verified",
    "certified",
    "trusted",
    "authentic",
    "genuine",
    "original",
    "orig",
    "real",
    "docker",
    "dockerhub",
    "library",
    "registry",
    "mirror",
    "images",
];

/// Company and packaging words. Real publishers glue them on (`redislabs`, `nginxinc`,
/// `natsio`, `jupyterhub`), and Docker Hub account names cannot contain separators, so only a
/// separated one claims authority (`grafana-labs`, `the-bitnami`) — except around the names
/// of the platform itself ([`PLATFORM_NAMESPACES`]), where any addition does (`dockerinc`).
const CORPORATE_AFFIXES: [&str; 24] = [
    "team", "labs", "lab", "inc", "corp", "hq", "io", "org", "hub", "secure", "security", "image",
    "img", "repo", "release", "releases", "prod", "admin", "support", "the", "my", "new", "latest",
    "store",
];

/// Namespaces that belong to Docker Hub itself.
const PLATFORM_NAMESPACES: [&str; 2] = ["docker", "library"];

/// Words that claim to be checked by someone, matched after folding look-alike characters.
const CLAIM_WORDS: [&str; 3] = ["official", "verified", "certified"];

/// How far (in [`Cost`] quarter steps) a part may be from a reference name of `len` bytes and
/// still count as imitating it. Short names get little room: almost every four-letter word is
/// one edit away from some other real one.
pub fn budget(len: usize) -> Cost {
    match len {
        0..=3 => 1,
        4 => 2,
        5..=8 => 4,
        _ => 5,
    }
}

/// How many real (not look-alike, separator or doubled-letter) edits a near-miss of a name of
/// `len` bytes may contain: one up to eight letters, where two independent slips are both
/// unlikely for a typo and common between unrelated real names (`minio`/`n8nio`), two above.
pub fn max_real_edits(len: usize) -> usize {
    if len <= 8 {
        1
    } else {
        2
    }
}

/// Inside a publisher's own namespace the budget stops at one plain edit: the publisher owns
/// every name there and often ships editions a letter apart (`gitlab-ce`/`gitlab-ee`).
fn vendor_budget(len: usize) -> Cost {
    budget(len).min(distance::INDEL)
}

// === the rules ===

/// The nearest name in `group` within its [`budget`], ignoring those `skip` rejects. Ties go
/// to the lower cost, then the closer length, then the smaller name, so results are stable.
pub fn typo(
    query: &str,
    group: &NameIndex,
    scratch: &mut Scratch,
    budget: fn(usize) -> Cost,
    skip: impl Fn(&str, &str) -> bool,
) -> Option<Match> {
    let mut best: Option<(Cost, usize, &str)> = None;
    for &id in group.candidates(query, scratch) {
        let target = group.name(id);
        if target == query || skip(query, target) {
            continue;
        }
        let (q, t) = (query.as_bytes(), target.as_bytes());
        let Some(cost) = distance(q, t, budget(target.len())) else {
            continue;
        };
        if distance::real_edits(q, t, max_real_edits(target.len())).is_none() {
            continue;
        }
        let key = (cost, query.len().abs_diff(target.len()), target);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best.map(|(_, _, target)| Match::new(target, classify(query, target)))
}

/// Same name once separators are ignored: `hello_world`, `nginx-inc`, `elastic-search`.
pub fn separators(query: &str, group: &NameIndex) -> Option<Match> {
    group
        .without_separators(query)
        .filter(|t| *t != query)
        .map(|t| Match::new(t, Kind::Separator))
}

/// A plural of a reference name, or the singular of one that ends in `s`: `alpines`,
/// `rubies`, `linuxservers`, `libraries`, `postgre`, `curlimage`.
pub fn plural(query: &str, group: &NameIndex) -> Option<Match> {
    let mut forms: Vec<String> = Vec::with_capacity(4);
    if let Some(stem) = query.strip_suffix("ies") {
        forms.push(format!("{stem}y"));
    }
    if let Some(stem) = query.strip_suffix("es") {
        forms.push(stem.to_owned());
    }
    if let Some(stem) = query.strip_suffix('s') {
        forms.push(stem.to_owned());
    }
    forms.push(format!("{query}s"));
    forms
        .iter()
        .find(|f| f.len() >= 3 && group.contains(f))
        .map(|f| Match::new(f, Kind::Plural))
}

/// A reference name with a version number added: `python3`, `redis7`, `ubuntu-22`.
pub fn version_suffix(query: &str, group: &NameIndex) -> Option<Match> {
    let stem = strip_version(query);
    (stem != query && stem.len() >= 2 && group.contains(stem))
        .then(|| Match::new(stem, Kind::VersionSuffix))
}

/// `s` without a trailing run of digits and the separator before it.
fn strip_version(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(|c: char| is_separator(c as u8))
}

/// Whether two image names differ only in a short trailing version number (`nexus`/`nexus3`,
/// `java17`/`java21`, `python-311`); longer digit runs (`bde2020`) are part of the name.
fn version_only(a: &str, b: &str) -> bool {
    version_siblings(a, b, 3)
}

/// Whether two namespaces differ only in a one-digit version (`rhel8`/`rhel9`, `ubi8`/`ubi9`);
/// other trailing numbers (`lissy93`) are part of an account name.
fn namespace_versions(a: &str, b: &str) -> bool {
    version_siblings(a, b, 1)
}

fn version_siblings(a: &str, b: &str, max_digits: usize) -> bool {
    let digits = |s: &str| s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    digits(a) <= max_digits && digits(b) <= max_digits && strip_version(a) == strip_version(b)
}

/// A reference name among the separator-delimited words of `query`, with words around it:
/// `alpine-base`, `docker-nginx`, `mariadb-server`. With `only_words`, every extra word must
/// be one of those; otherwise any extra word counts. The longest embedded name wins, and a
/// filler word (`docker`) is never the answer when a real name is present.
pub fn extra_words(query: &str, group: &NameIndex, only_words: Option<&[&str]>) -> Option<Match> {
    let words: Vec<&str> = query
        .split(|c: char| is_separator(c as u8))
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < 2 {
        return None;
    }
    let mut best: Option<(usize, bool, &str)> = None;
    for len in 1..words.len() {
        for start in 0..=words.len() - len {
            let rest_ok = only_words.is_none_or(|allowed| {
                words[..start]
                    .iter()
                    .chain(&words[start + len..])
                    .all(|w| allowed.contains(w))
            });
            if !rest_ok {
                continue;
            }
            let Some(target) = group.without_separators(&words[start..start + len].concat()) else {
                continue;
            };
            let real = !FILLER_WORDS.contains(&target);
            if best.is_none_or(|(l, r, _)| (len, real) > (l, r)) {
                best = Some((len, real, target));
            }
        }
    }
    best.map(|(_, _, t)| Match::new(t, Kind::Affix))
}

/// A reference name of at least four letters glued to a short (up to three letters) or filler
/// word without a separator: `postgresql`, `mongodb`, `nodejs`, `dockernginx`.
pub fn glued(query: &str, group: &NameIndex) -> Option<Match> {
    let n = query.len();
    let short_or_filler = |w: &str| {
        let w = w.trim_matches(|c: char| is_separator(c as u8));
        !w.is_empty() && (w.len() <= 3 || FILLER_WORDS.contains(&w))
    };
    for k in (4..n).rev() {
        let (head, tail) = query.split_at(k);
        if group.contains(head) && short_or_filler(tail) {
            return Some(Match::new(head, Kind::Affix));
        }
    }
    for k in 1..n.saturating_sub(3) {
        let (head, tail) = query.split_at(k);
        if group.contains(tail) && short_or_filler(head) {
            return Some(Match::new(tail, Kind::Affix));
        }
    }
    None
}

/// A known name of three letters or more with a word claiming authority on either side:
/// [`CLAIM_AFFIXES`] or a number glued or joined (`bitnamiofficial`, `docker123321`), or
/// [`CORPORATE_AFFIXES`] joined with a separator (`grafana-labs`, `the-bitnami`).
pub fn authority_affix(query: &str, group: &NameIndex) -> Option<Match> {
    let claims = |w: &str, known: &str| {
        let word = w.trim_matches(|c: char| is_separator(c as u8));
        let separated = word.len() < w.len() || PLATFORM_NAMESPACES.contains(&known);
        !word.is_empty()
            && (CLAIM_AFFIXES.contains(&word)
                || word.bytes().all(|c| c.is_ascii_digit())
                || separated && CORPORATE_AFFIXES.contains(&word))
    };
    let n = query.len();
    let sep = |c: char| is_separator(c as u8);
    for k in (3..n).rev() {
        let (head, tail) = query.split_at(k);
        if !head.ends_with(sep) && group.contains(head) && claims(tail, head) {
            return Some(Match::new(head, Kind::OfficialLooking));
        }
    }
    for k in 1..n.saturating_sub(2) {
        let (head, tail) = query.split_at(k);
        if !tail.starts_with(sep) && group.contains(tail) && claims(head, tail) {
            return Some(Match::new(tail, Kind::OfficialLooking));
        }
    }
    None
}

/// Whether `query` contains a word claiming to be official, also when spelled with look-alike
/// characters (`0fficial`, `offlcial`) or misspelled (`offical`, `oficial`), but not an
/// ordinary word that shares its start (`office`).
pub fn claims_official(query: &str) -> bool {
    let q = query.as_bytes();
    let folded: Vec<u8> = q.iter().map(|&c| glyph(c)).collect();
    let contains = |stem: &str| {
        let stem: Vec<u8> = stem.bytes().map(glyph).collect();
        folded.windows(stem.len()).any(|w| w == stem.as_slice())
    };
    if CLAIM_WORDS.iter().any(|w| contains(w)) {
        return true;
    }
    // Any stretch starting at a look-alike of "of" that is a near-miss of "official".
    (0..q.len().saturating_sub(1))
        .filter(|&i| folded[i] == b'o' && folded[i + 1] == b'f')
        .any(|i| {
            (6..=10).any(|len| {
                q.get(i..i + len)
                    .is_some_and(|w| distance(w, b"official", budget(8)).is_some())
            })
        })
}

/// The kind of edit that turns `query` into `target`, for the reason text.
pub fn classify(query: &str, target: &str) -> Kind {
    let (q, t) = (query.as_bytes(), target.as_bytes());
    let collapse = |s: &[u8]| {
        let mut v = s.to_vec();
        v.dedup();
        v
    };
    if distance::without_separators(query) == distance::without_separators(target) {
        return Kind::Separator;
    }
    if collapse(q) == collapse(t) {
        return Kind::Repetition;
    }
    // No real edit left once look-alikes are folded.
    if distance::real_edits(q, t, 0).is_some() {
        return Kind::LookAlike;
    }
    if q.len() == t.len() {
        let diffs: Vec<usize> = (0..q.len()).filter(|&i| q[i] != t[i]).collect();
        match diffs[..] {
            [i, j] if j == i + 1 && q[i] == t[j] && q[j] == t[i] => return Kind::Transposition,
            [i] if keyboard_adjacent(q[i], t[i]) => return Kind::Keyboard,
            [i] if is_vowel(q[i]) && is_vowel(t[i]) => return Kind::Vowel,
            _ => {}
        }
    }
    match q.len() as isize - t.len() as isize {
        -1 => Kind::Omission,
        1 => Kind::Insertion,
        _ => Kind::Misspelling,
    }
}

// === the contexts ===

/// A repository in `library/` or a per-architecture namespace, compared with the official
/// images (see the module doc).
pub fn closed_world(repo: &str, official: &NameIndex, scratch: &mut Scratch) -> Option<Match> {
    separators(repo, official)
        .or_else(|| version_suffix(repo, official))
        .or_else(|| plural(repo, official))
        .or_else(|| typo(repo, official, scratch, budget, |_, _| false))
        .or_else(|| extra_words(repo, official, None))
        .or_else(|| glued(repo, official))
}

/// A repository in a known publisher's namespace, compared with that namespace's known
/// repositories and then with the official images it may mirror.
pub fn vendor_world(repo: &str, groups: &[&NameIndex], scratch: &mut Scratch) -> Option<Match> {
    groups.iter().find_map(|group| {
        separators(repo, group)
            .or_else(|| plural(repo, group))
            .or_else(|| typo(repo, group, scratch, vendor_budget, version_only))
            .or_else(|| extra_words(repo, group, Some(&DECEPTIVE_REPO_WORDS)))
    })
}

/// An unknown namespace compared with the known namespaces of its registry. With
/// `docker_hub`, words claiming authority count too (the list of publishers is Docker Hub's).
pub fn namespace_world(
    namespace: &str,
    known: &NameIndex,
    docker_hub: bool,
    scratch: &mut Scratch,
) -> Option<Match> {
    // Namespaces a version apart (`rhel8`, `rhel9`) are siblings; on Docker Hub a number added
    // to a known name is caught as an authority affix below.
    let found = separators(namespace, known)
        .or_else(|| typo(namespace, known, scratch, budget, namespace_versions))
        .or_else(|| plural(namespace, known));
    if !docker_hub {
        return found;
    }
    found.or_else(|| authority_affix(namespace, known))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(names: &[&str]) -> NameIndex {
        NameIndex::new(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn closed_world_catches_every_mutation_class() {
        let official = group(&[
            "alpine",
            "nginx",
            "redis",
            "postgres",
            "python",
            "ruby",
            "hello-world",
            "node",
            "mariadb",
            "httpd",
            "ubuntu",
            "rocket.chat",
        ]);
        let mut s = Scratch::default();
        let cases = [
            ("alp1ne", "alpine", Kind::LookAlike),
            ("rnariadb", "mariadb", Kind::LookAlike),
            ("ngnix", "nginx", Kind::Transposition),
            ("nginc", "nginx", Kind::Keyboard),
            ("ngnx", "nginx", Kind::Omission),
            ("httd", "httpd", Kind::Omission),
            ("alpline", "alpine", Kind::Insertion),
            ("nginxx", "nginx", Kind::Repetition),
            ("hello_world", "hello-world", Kind::Separator),
            ("rocketchat", "rocket.chat", Kind::Separator),
            ("alpines", "alpine", Kind::Plural),
            ("rubies", "ruby", Kind::Plural),
            ("python3", "python", Kind::VersionSuffix),
            ("ubuntu-22", "ubuntu", Kind::VersionSuffix),
            ("alpine-base", "alpine", Kind::Affix),
            ("docker-nginx", "nginx", Kind::Affix),
            ("redis-official", "redis", Kind::Affix),
            ("postgresql", "postgres", Kind::Affix),
            ("nodejs", "node", Kind::Affix),
        ];
        for (repo, target, kind) in cases {
            let m = closed_world(repo, &official, &mut s);
            assert_eq!(m, Some(Match::new(target, kind)), "{repo}");
        }
        for unrelated in ["kubernetes", "grafana", "x"] {
            assert_eq!(
                closed_world(unrelated, &official, &mut s),
                None,
                "{unrelated}"
            );
        }
    }

    #[test]
    fn vendor_world_allows_related_images_but_not_typos() {
        let repos = group(&["postgresql", "redis", "nexus3", "radarr", "grafana", "k6"]);
        let mut s = Scratch::default();
        for legit in [
            "postgresql-repmgr",
            "redis-sentinel",
            "nexus",
            "nexus2",
            "grafana-image-renderer",
            "xk6",
            "mimirtool",
        ] {
            assert_eq!(vendor_world(legit, &[&repos], &mut s), None, "{legit}");
        }
        for squat in [
            "postgressql",
            "postgre-sql",
            "postgresq",
            "rediss",
            "grafana-latest",
            "grafanas",
            "radar",
        ] {
            assert!(vendor_world(squat, &[&repos], &mut s).is_some(), "{squat}");
        }
    }

    #[test]
    fn namespace_world_flags_authority_claims_but_not_ordinary_extensions() {
        let known = group(&[
            "bitnami",
            "grafana",
            "docker",
            "jupyter",
            "library",
            "hashicorp",
        ]);
        let mut s = Scratch::default();
        for squat in [
            "bitnarni",
            "bitnamiofficial",
            "bitnami-official",
            "grafana-labs",
            "docker123321",
            "hashi-corp",
            "libraries",
            "_library",
            "dockerinc",
            "bitnami2",
        ] {
            assert!(
                namespace_world(squat, &known, true, &mut s).is_some(),
                "{squat}"
            );
        }
        for legit in [
            "jupyterlab-community",
            "bitnamilegacy",
            "grafanacommunity",
            "acme",
            "bitnamilabs",
            "jupyterhub",
            "dockerhubmirrorbot",
        ] {
            assert_eq!(
                namespace_world(legit, &known, true, &mut s),
                None,
                "{legit}"
            );
        }
    }

    #[test]
    fn official_claims_survive_look_alikes_and_misspellings() {
        for ns in [
            "official",
            "offical",
            "0fficial",
            "officialimages",
            "oficial",
            "verified-nginx",
        ] {
            assert!(claims_official(ns), "{ns}");
        }
        for ns in ["office", "bitnami", "officeshare", "onlyoffice", "of"] {
            assert!(!claims_official(ns), "{ns}");
        }
    }
}
