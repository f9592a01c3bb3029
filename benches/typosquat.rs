//! Typosquat detector benchmark: per-name latency (median, p99, max) of `Detector::check`
//! against the built-in reference set and against the built-in set plus 10,000 generated
//! names, and how long building each reference set takes and how much heap it keeps.
//!
//! Run with `cargo bench --bench typosquat`. Targets (issue #6): median ≤ 50 µs and
//! p99 ≤ 1 ms per uncached name against 10,000 names.
//!
//! Names are generated with a fixed seed, so runs are comparable. Each check is timed on its
//! own with `Instant`; nothing is cached between checks (the detector has no cache).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pullgate::typosquat::{normalize, Detector, ReferenceSet};

// === heap accounting ===

/// Counts live and peak heap bytes, to report what a reference set keeps.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// === deterministic names ===

/// xorshift64*: small, seeded, good enough to spread names.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SYLLABLES: [&str; 24] = [
    "ka", "ro", "mi", "ten", "dar", "vo", "lux", "sen", "ti", "bra", "no", "qu", "el", "zor", "pa",
    "fin", "gra", "du", "op", "ser", "ly", "cor", "ax", "mo",
];

/// A pronounceable word of 2–4 syllables.
fn word(rng: &mut Rng) -> String {
    let n = 2 + rng.below(3);
    (0..n).map(|_| *rng.pick(&SYLLABLES)).collect()
}

/// One random typosquat-style mutation of `name`'s last component.
fn mutate(rng: &mut Rng, name: &str) -> String {
    let (head, last) = name.rsplit_once('/').unwrap_or(("", name));
    let mut b: Vec<u8> = last.bytes().collect();
    if b.len() < 3 {
        b.push(b'x');
    }
    let i = 1 + rng.below(b.len() - 2);
    match rng.below(7) {
        0 => b.swap(i, i + 1),
        1 => {
            b.remove(i);
        }
        2 => b.insert(i, b[i]),
        3 => b[i] = *rng.pick(b"0o1li5s"),
        4 => b.extend_from_slice(b"-official"),
        5 => b.push(b's'),
        _ => b[i] = *rng.pick(b"qwertyuiopasdfghjklzxcvbnm"),
    }
    let last = String::from_utf8_lossy(&b).into_owned();
    if head.is_empty() {
        last
    } else {
        format!("{head}/{last}")
    }
}

fn list(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The 10,000 generated reference names, as the text of a `known` file: 2,000 one-component
/// (library) names, 7,000 repositories in 1,500 Docker Hub namespaces, 1,000 repositories on
/// 100 other registries.
fn generated_known(rng: &mut Rng) -> Vec<String> {
    let mut names = Vec::with_capacity(10_000);
    for _ in 0..2_000 {
        names.push(word(rng));
    }
    let namespaces: Vec<String> = (0..1_500).map(|_| word(rng)).collect();
    for _ in 0..7_000 {
        names.push(format!("{}/{}", rng.pick(&namespaces), word(rng)));
    }
    let hosts: Vec<String> = (0..100)
        .map(|_| format!("registry.{}.{}", word(rng), rng.pick(&["com", "io", "net"])))
        .collect();
    for _ in 0..1_000 {
        names.push(format!("{}/{}/{}", rng.pick(&hosts), word(rng), word(rng)));
    }
    names
}

/// Queries: a third exact reference names, a third mutated ones, a third unrelated names
/// under random namespaces, registries and `library/`.
fn queries(rng: &mut Rng, refs: &[String], n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            let base = rng.pick(refs).clone();
            match k % 3 {
                0 => normalize(&base),
                1 => normalize(&mutate(rng, &base)),
                _ => match rng.below(3) {
                    0 => normalize(&word(rng)),
                    1 => normalize(&format!("{}/{}", word(rng), word(rng))),
                    _ => normalize(&format!(
                        "registry.{}.io/{}/{}",
                        word(rng),
                        word(rng),
                        word(rng)
                    )),
                },
            }
        })
        .collect()
}

// === measurement ===

struct Latency {
    median: Duration,
    p99: Duration,
    max: Duration,
    flagged: usize,
}

fn measure(d: &Detector, names: &[String]) -> Latency {
    // Warm up caches and branch predictors once over the set.
    let mut flagged = 0;
    for n in names {
        flagged += usize::from(d.check(n).suspect);
    }
    let mut times: Vec<Duration> = names
        .iter()
        .map(|n| {
            let start = Instant::now();
            let v = d.check(n);
            let t = start.elapsed();
            std::hint::black_box(v);
            t
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Latency {
        median: at(0.5),
        p99: at(0.99),
        max: times[times.len() - 1],
        flagged,
    }
}

/// Builds a detector `runs` times; returns it with the median build time and the heap it
/// keeps (live bytes after building, minus live bytes before).
fn build(runs: usize, known: Option<&str>) -> (Detector, Duration, usize, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut kept = 0;
    let mut peak = 0;
    let mut detector = None;
    for _ in 0..runs {
        drop(detector.take());
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let mut reference = ReferenceSet::builtin();
        if let Some(text) = known {
            reference
                .add_known(text)
                .expect("generated names are valid");
        }
        let d = Detector::new(reference, Vec::new());
        times.push(start.elapsed());
        kept = LIVE.load(Ordering::Relaxed) - before;
        peak = PEAK.load(Ordering::Relaxed) - before;
        detector = Some(d);
    }
    times.sort_unstable();
    let d = detector.expect("at least one run");
    (d, times[times.len() / 2], kept, peak)
}

fn report(
    title: &str,
    d: &Detector,
    load: Duration,
    kept: usize,
    peak: usize,
    l: &Latency,
    n: usize,
) {
    println!("{title}");
    println!(
        "  reference set: build {:.2} ms (median), heap kept {:.2} MiB (detector estimate {:.2} MiB), peak during build {:.2} MiB",
        load.as_secs_f64() * 1e3,
        kept as f64 / 1048576.0,
        d.heap_bytes() as f64 / 1048576.0,
        peak as f64 / 1048576.0,
    );
    println!(
        "  check: {n} names, median {:.1} µs, p99 {:.1} µs, max {:.1} µs ({} flagged)",
        l.median.as_secs_f64() * 1e6,
        l.p99.as_secs_f64() * 1e6,
        l.max.as_secs_f64() * 1e6,
        l.flagged
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this unoptimised without
    // it, where timings mean nothing: then only a short smoke run checks that it works.
    let timing = std::env::args().any(|a| a == "--bench");
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let namespaces = list(include_str!("../data/typosquat/namespaces.txt"));
    let builtin_refs: Vec<String> = list(include_str!("../data/typosquat/official.txt"))
        .into_iter()
        .chain(list(include_str!("../data/typosquat/repositories.txt")))
        .map(str::to_owned)
        .chain(namespaces.into_iter().map(|ns| format!("{ns}/app")))
        .collect();

    let n = if timing { 30_000 } else { 300 };
    let (d, load, kept, peak) = build(11, None);
    let qs = queries(&mut rng, &builtin_refs, n);
    let l = measure(&d, &qs);
    report("built-in reference set", &d, load, kept, peak, &l, n);
    drop(d);

    let generated = generated_known(&mut rng);
    let known_text = generated.join("\n");
    let (d, load, kept, peak) = build(5, Some(&known_text));
    let mut refs = generated;
    refs.extend(builtin_refs);
    let qs = queries(&mut rng, &refs, n);
    let l = measure(&d, &qs);
    report(
        "built-in set + 10,000 generated names",
        &d,
        load,
        kept,
        peak,
        &l,
        n,
    );
    if !timing {
        println!("  (smoke run without --bench: timings are not meaningful)");
        return;
    }
    let ok = l.median <= Duration::from_micros(50) && l.p99 <= Duration::from_millis(1);
    println!(
        "  target (median ≤ 50 µs, p99 ≤ 1 ms against 10,000 names): {}",
        if ok { "met" } else { "NOT met" }
    );
}
