//! The data sets, as gzip `/write` bodies of [`BATCH`] points each: `cpu` (ours: 1000
//! series, 3 fields, one shard) and `tsbs` (the Time Series Benchmark Suite's devops
//! cpu-only shape, which we did not design: 10 tags, 10 float fields of full precision, 100
//! hosts, spread over a year of 7-day shards: many small shards).

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Points per `/write` batch.
pub const BATCH: usize = 5000;
/// 2021-01-01T00:00:00Z in ns.
pub const T0: i64 = 1_609_459_200_000_000_000;

/// One data set: its bodies and what a restored copy must count.
pub struct Set {
    /// Short name (`cpu`, `tsbs`).
    pub name: &'static str,
    /// One-line description for the report.
    pub about: String,
    /// gzip bodies.
    pub bodies: Vec<Vec<u8>>,
    /// Bytes of line protocol before gzip.
    pub raw: u64,
    /// Points written (each field has one value per point).
    pub points: u64,
    /// The measurement.
    pub measurement: &'static str,
    /// Its fields.
    pub fields: &'static [&'static str],
}

/// The set called `name` with `n` batches.
pub fn by_name(name: &str, n: usize) -> Set {
    match name {
        "cpu" => build("cpu", n, "cpu", &["n", "user", "system"], |b| {
            cpu_text(b, 10_000_000_000)
        }),
        "tsbs" => build("tsbs", n, "cpu", &TSBS_FIELDS, tsbs_text),
        other => panic!("unknown data set {other:?} (cpu, tsbs)"),
    }
}

fn build(
    name: &'static str,
    n: usize,
    measurement: &'static str,
    fields: &'static [&'static str],
    text: impl Fn(usize) -> String,
) -> Set {
    let mut raw = 0u64;
    let bodies = (0..n)
        .map(|b| {
            let t = text(b);
            raw += t.len() as u64;
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(t.as_bytes()).unwrap();
            gz.finish().unwrap()
        })
        .collect();
    let about = match name {
        "cpu" => "1000 series x 3 fields (float, float, integer), 10 s apart: one shard".into(),
        _ => format!(
            "TSBS devops cpu-only: {TSBS_HOSTS} hosts x 10 tags x 10 float fields every {} h over {} days of 7-day shards",
            TSBS_STEP_NS / 3_600_000_000_000,
            (n * BATCH / TSBS_HOSTS) as i64 * TSBS_STEP_NS / 86_400_000_000_000
        ),
    };
    Set {
        name,
        about,
        bodies,
        raw,
        points: (n * BATCH) as u64,
        measurement,
        fields,
    }
}

/// The line protocol of batch `b`: [`BATCH`] points of 1000 series, 3 fields, each 1000
/// points `step` ns later than the previous 1000.
pub fn cpu_text(b: usize, step: i64) -> String {
    let mut text = String::with_capacity(BATCH * 90);
    for k in 0..BATCH {
        let i = (b * BATCH + k) as i64;
        let t = T0 + (i / 1000) * step + (i % 1000);
        text.push_str(&format!(
            "cpu,host=h{},region=r{} user={}.25,system={},n={}i {t}\n",
            i % 1000,
            i % 7,
            i % 97,
            (i % 13) as f64 / 3.0,
            i
        ));
    }
    text
}

const TSBS_HOSTS: usize = 100;
const TSBS_STEP_NS: i64 = 3 * 3_600_000_000_000;
const TSBS_FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// splitmix64: a fixed pseudo-random value per input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The tag set TSBS gives host `h` (fixed per host).
fn tsbs_tags(h: usize) -> String {
    const REGIONS: [&str; 9] = [
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    ];
    const OS: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
    const TEAM: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
    const ENV: [&str; 3] = ["production", "staging", "test"];
    let r = mix(h as u64);
    let region = REGIONS[(r % 9) as usize];
    format!(
        "hostname=host_{h},region={region},datacenter={region}{},rack={},os={},arch={},team={},service={},service_version={},service_environment={}",
        ["a", "b", "c"][(r >> 8) as usize % 3],
        (r >> 12) % 100,
        OS[(r >> 20) as usize % 3],
        ["x86", "x64"][(r >> 24) as usize % 2],
        TEAM[(r >> 28) as usize % 4],
        (r >> 32) % 20,
        (r >> 40) % 2,
        ENV[(r >> 44) as usize % 3],
    )
}

/// Batch `b` of the `tsbs` set: [`BATCH`] points, host by host within each time step,
/// values in [0, 100) with full float precision.
fn tsbs_text(b: usize) -> String {
    let tags: Vec<String> = (0..TSBS_HOSTS).map(tsbs_tags).collect();
    let mut text = String::with_capacity(BATCH * 420);
    for k in 0..BATCH {
        let i = b * BATCH + k;
        let (step, h) = (i / TSBS_HOSTS, i % TSBS_HOSTS);
        text.push_str("cpu,");
        text.push_str(&tags[h]);
        for (f, name) in TSBS_FIELDS.iter().enumerate() {
            let r = mix(((i as u64) << 4) | f as u64);
            let v = (r >> 11) as f64 / (1u64 << 53) as f64 * 100.0;
            text.push(if f == 0 { ' ' } else { ',' });
            text.push_str(&format!("{name}={v}"));
        }
        let t = T0 + step as i64 * TSBS_STEP_NS;
        text.push_str(&format!(" {t}\n"));
    }
    text
}
