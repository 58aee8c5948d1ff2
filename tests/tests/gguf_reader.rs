//! The GGUF reader on synthetic files from the test writer
//! (`tests::gguf`): a valid file round-trips (every metadata type, versions
//! 2 and 3, custom alignment, block types), and every kind of damage gives
//! its typed `GgufError` (through `ModelError::Gguf`, naming the file), never
//! a panic: truncation at every byte, bad magic, versions, big-endian,
//! absurd counts and lengths, out-of-bounds, overflowing, misaligned and
//! overlapping data, unknown and unsupported tensor types, partial blocks,
//! duplicate keys and tensors; plus a seeded byte-flipping sweep.

use anyhow::{Result, bail};
use model::ModelError;
use model::weights::WeightSource;
use model::weights::gguf::reader::parse;
use model::weights::gguf::{GgufError, GgufFile, GgufWeights, MetaValue};
use tests::gguf::{GgufWriter, Layout, f32v, s, u32v};

fn sample() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", s("lfm2"))
        .kv("u8", MetaValue::U8(7))
        .kv("i8", MetaValue::I8(-7))
        .kv("u16", MetaValue::U16(700))
        .kv("i16", MetaValue::I16(-700))
        .kv("u32", u32v(70_000))
        .kv("i32", MetaValue::I32(-70_000))
        .kv("f32", f32v(0.25))
        .kv("bool", MetaValue::Bool(true))
        .kv("str", s("héllo"))
        .kv("u64", MetaValue::U64(1 << 40))
        .kv("i64", MetaValue::I64(-(1 << 40)))
        .kv("f64", MetaValue::F64(1e-300))
        .kv("arr", MetaValue::Array(vec![s("a"), s(""), s("c d")]))
        .kv(
            "nested",
            MetaValue::Array(vec![MetaValue::Array(vec![u32v(1), u32v(2)])]),
        );
    w.f32_tensor("a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // One Q8_0 row of 32: scale 0.5 (f16 0x3800), values 0..32.
    let mut q = vec![0x00, 0x38];
    q.extend((0..32).map(|i| i as u8));
    w.tensor("q", &[32, 1], 8, q);
    w.f32_tensor("b", &[5], &[9.0; 5]);
    w
}

fn gguf_err(r: Result<model::weights::gguf::Header, GgufError>) -> GgufError {
    match r {
        Ok(_) => panic!("parsed a damaged file"),
        Err(e) => e,
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn gguf_valid_file_round_trips() -> Result<()> {
    for version in [2, 3] {
        for alignment in [32usize, 64, 1] {
            let mut w = sample();
            w.version = version;
            w.alignment = alignment;
            if alignment != 32 {
                w.kv("general.alignment", u32v(alignment as u32));
            }
            let (bytes, l) = w.to_bytes();
            let h = parse(&bytes)?;
            assert_eq!(h.version, version);
            assert_eq!(h.alignment, alignment as u64);
            assert_eq!(h.data_start as usize, l.data_start);
            let m = &h.metadata;
            assert_eq!(m.get("u8"), Some(&MetaValue::U8(7)));
            assert_eq!(m.get("i16"), Some(&MetaValue::I16(-700)));
            assert_eq!(m.get("i64").and_then(MetaValue::as_i64), Some(-(1 << 40)));
            assert_eq!(m.get("f64").and_then(MetaValue::as_f64), Some(1e-300));
            assert_eq!(m.str("str")?, "héllo");
            assert_eq!(m.array("arr")?.len(), 3);
            assert_eq!(m.array("nested")?[0].as_array().map(<[_]>::len), Some(2));
            assert_eq!(m.usize("u32")?, 70_000);
            assert!(matches!(m.usize("i8"), Err(GgufError::KeyType { .. })));
            assert!(matches!(m.usize("nope"), Err(GgufError::MissingKey { .. })));
            let names: Vec<&str> = h.tensors.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["a", "q", "b"]);
            assert_eq!(h.tensors[0].shape(), [2, 3]);
            assert_eq!(h.tensors[1].nbytes, 34);
            assert_eq!(h.tensors[1].dtype()?, tensor::DType::Q8_0);
        }
    }
    // Through a file: data bytes and dequantized values.
    let dir = tempdir("roundtrip");
    let path = dir.join("ok.gguf");
    sample().write(&path)?;
    let f = GgufFile::open(&path)?;
    let t = f.tensor("a").unwrap();
    let v: Vec<f32> = f
        .data(t)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(v, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let q = tensor::quant::dequantize_vec(tensor::DType::Q8_0, f.data(f.tensor("q").unwrap()))?;
    assert_eq!(q[3], 1.5);
    assert_eq!(f.type_histogram().get("F32"), Some(&(2, 44)));
    Ok(())
}

#[test]
fn gguf_truncated_anywhere_is_a_typed_error() -> Result<()> {
    let (bytes, l) = sample().to_bytes();
    for len in 0..bytes.len() {
        match parse(&bytes[..len]) {
            // A count that no longer fits what is left is refused as such.
            Err(GgufError::Truncated { .. } | GgufError::CountTooLarge { .. })
                if len < l.infos_end => {}
            Err(GgufError::DataOutOfBounds { .. }) if len >= l.infos_end => {}
            other => bail!("cut at {len} of {}: {other:?}", bytes.len()),
        }
    }
    // And through the file API: the path is named.
    let dir = tempdir("trunc");
    let path = dir.join("cut.gguf");
    std::fs::write(&path, &bytes[..l.kv_count_at + 3])?;
    let e = GgufFile::open(&path).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::Gguf {
                kind: GgufError::Truncated { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("cut.gguf"), "{e}");
    Ok(())
}

#[test]
fn gguf_header_errors() {
    let (bytes, l) = sample().to_bytes();
    let mut b = bytes.clone();
    b[..4].copy_from_slice(b"GGUG");
    assert!(matches!(gguf_err(parse(&b)), GgufError::BadMagic { found } if &found == b"GGUG"));
    for v in [0, 1, 4, 77] {
        let mut b = bytes.clone();
        put_u32(&mut b, l.version_at, v);
        assert_eq!(
            gguf_err(parse(&b)),
            GgufError::UnsupportedVersion { version: v }
        );
    }
    let mut b = bytes.clone();
    put_u32(&mut b, l.version_at, 3u32.swap_bytes());
    assert!(matches!(gguf_err(parse(&b)), GgufError::BigEndian { .. }));
    // Absurd counts are refused before any allocation.
    for at in [l.tensor_count_at, l.kv_count_at] {
        for count in [u64::MAX, 1 << 40, bytes.len() as u64] {
            let mut b = bytes.clone();
            put_u64(&mut b, at, count);
            let e = gguf_err(parse(&b));
            assert!(
                matches!(
                    e,
                    GgufError::CountTooLarge { .. } | GgufError::Truncated { .. }
                ),
                "{e:?}"
            );
        }
    }
    let mut b = bytes.clone();
    put_u64(&mut b, l.tensor_count_at, u64::MAX);
    assert!(matches!(
        gguf_err(parse(&b)),
        GgufError::CountTooLarge { .. }
    ));
    // An unknown value type.
    let mut b = bytes.clone();
    put_u32(&mut b, l.kv_type_at[1], 13);
    assert!(matches!(
        gguf_err(parse(&b)),
        GgufError::BadValueType { ty: 13, .. }
    ));
}

#[test]
fn gguf_metadata_length_errors() {
    // A string length past the end; an array count past the end.
    let mut w = GgufWriter::new();
    w.kv("k", s("abc"));
    let (bytes, l) = w.to_bytes();
    let mut b = bytes.clone();
    put_u64(&mut b, l.kv_type_at[0] + 4, u64::MAX);
    assert!(matches!(gguf_err(parse(&b)), GgufError::Truncated { .. }));
    let mut w = GgufWriter::new();
    w.kv("arr", MetaValue::Array(vec![u32v(1), u32v(2)]));
    let (bytes, l) = w.to_bytes();
    let mut b = bytes.clone();
    put_u64(&mut b, l.kv_type_at[0] + 8, u64::MAX / 2);
    assert!(matches!(
        gguf_err(parse(&b)),
        GgufError::CountTooLarge { .. }
    ));
    // Arrays nested past the limit.
    let mut deep = u32v(1);
    for _ in 0..6 {
        deep = MetaValue::Array(vec![deep]);
    }
    let mut w = GgufWriter::new();
    w.kv("deep", deep);
    assert!(matches!(
        gguf_err(parse(&w.to_bytes().0)),
        GgufError::NestedTooDeep { .. }
    ));
    // Bad UTF-8 in a key, a repeated key.
    let mut w = GgufWriter::new();
    w.kv("k\u{e9}", u32v(1));
    let (mut b, _) = w.to_bytes();
    let at = b.iter().position(|&x| x == 0xc3).unwrap();
    b[at] = 0xff;
    assert!(matches!(gguf_err(parse(&b)), GgufError::BadUtf8 { .. }));
    let mut w = GgufWriter::new();
    w.kv("k", u32v(1)).kv("k", u32v(2));
    assert!(matches!(
        gguf_err(parse(&w.to_bytes().0)),
        GgufError::DuplicateKey { .. }
    ));
    // Alignment 0 and 3.
    for a in [0u32, 3] {
        let mut w = sample();
        w.kv("general.alignment", u32v(a));
        assert!(matches!(
            gguf_err(parse(&w.to_bytes().0)),
            GgufError::BadAlignment { .. }
        ));
    }
}

fn with_tensor_field(edit: impl Fn(&mut Vec<u8>, &Layout)) -> GgufError {
    let (mut b, l) = sample().to_bytes();
    edit(&mut b, &l);
    gguf_err(parse(&b))
}

#[test]
fn gguf_tensor_table_errors() {
    // Data out of bounds: far past the end, and an offset whose end overflows.
    let e = with_tensor_field(|b, l| put_u64(b, l.offset_at[2], 1 << 20));
    assert!(
        matches!(e, GgufError::DataOutOfBounds { ref name, .. } if name == "b"),
        "{e:?}"
    );
    let e = with_tensor_field(|b, l| put_u64(b, l.offset_at[2], u64::MAX - 31));
    assert!(matches!(e, GgufError::DataOutOfBounds { .. }), "{e:?}");
    // Misaligned.
    let e = with_tensor_field(|b, l| put_u64(b, l.offset_at[1], 8));
    assert!(
        matches!(
            e,
            GgufError::MisalignedOffset {
                offset: 8,
                alignment: 32,
                ..
            }
        ),
        "{e:?}"
    );
    // Overlapping.
    let e = with_tensor_field(|b, l| put_u64(b, l.offset_at[2], 0));
    assert!(matches!(e, GgufError::Overlap { .. }), "{e:?}");
    // Unknown type id; a partial Q8_0 block row.
    let e = with_tensor_field(|b, l| put_u32(b, l.type_at[0], 99));
    assert!(
        matches!(e, GgufError::UnknownType { type_id: 99, .. }),
        "{e:?}"
    );
    let e = with_tensor_field(|b, l| put_u64(b, l.dims_at[1], 48));
    assert!(
        matches!(e, GgufError::PartialBlock { ne0: 48, .. }),
        "{e:?}"
    );
    // Dimensions: too many, none, overflowing.
    let e = with_tensor_field(|b, l| put_u32(b, l.n_dims_at[0], 9));
    assert!(
        matches!(e, GgufError::TooManyDims { n_dims: 9, .. }),
        "{e:?}"
    );
    let e = with_tensor_field(|b, l| put_u32(b, l.n_dims_at[0], 0));
    assert!(
        matches!(e, GgufError::TooManyDims { n_dims: 0, .. }),
        "{e:?}"
    );
    let e = with_tensor_field(|b, l| {
        put_u64(b, l.dims_at[0], 1 << 40);
        put_u64(b, l.dims_at[0] + 8, 1 << 40);
    });
    assert!(matches!(e, GgufError::DimsOverflow { .. }), "{e:?}");
    // A repeated tensor name.
    let mut w = GgufWriter::new();
    w.f32_tensor("t", &[1], &[0.0])
        .f32_tensor("t", &[1], &[0.0]);
    assert!(matches!(
        gguf_err(parse(&w.to_bytes().0)),
        GgufError::DuplicateTensor { .. }
    ));
}

#[test]
fn gguf_unsupported_type_is_named_when_read() -> Result<()> {
    // Q5_K (13) has a known layout, so the file opens; reading the tensor
    // names its type and the tensor.
    let mut w = GgufWriter::new();
    w.kv("general.architecture", s("lfm2"));
    w.tensor("token_embd.weight", &[256, 1], 13, vec![0; 176]);
    let dir = tempdir("q5k");
    let path = dir.join("q5k.gguf");
    w.write(&path)?;
    let g = GgufWeights::open(&path, None)?;
    let e = g.get("model.embed_tokens.weight").unwrap_err();
    assert!(
        matches!(&e, ModelError::Gguf { kind: GgufError::UnsupportedType { name, type_name }, .. }
            if name == "token_embd.weight" && type_name == "Q5_K"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("unsupported tensor type Q5_K (token_embd.weight)"),
        "{e}"
    );
    // The wrong architecture for either role.
    let e = GgufWeights::open(&path, Some(&path)).err().unwrap();
    assert!(
        matches!(
            e,
            ModelError::Gguf {
                kind: GgufError::Architecture { .. },
                ..
            }
        ),
        "{e}"
    );
    Ok(())
}

/// xorshift64*, seeded.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn gguf_random_damage_never_panics() {
    let (bytes, l) = sample().to_bytes();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..5000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next() % 4 {
            // Mostly the header and tables, where damage matters.
            let at = (rng.next() % l.infos_end as u64) as usize;
            b[at] = rng.next() as u8;
        }
        match parse(&b) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(err > 1000, "{ok} parsed, {err} refused");
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lfm2vl-gguf-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
