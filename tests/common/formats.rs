//! Small data-set files in every format `dataset` reads, generated from a seed:
//! CIFAR binary records, CIFAR python pickles (written as Python 2's cPickle and
//! Python 3's pickle write protocol 2), IDX files, PNG/JPEG class folders. Shared
//! by tests/data_*.rs and benches/data.rs.
#![allow(dead_code)]

use std::path::Path;

/// splitmix64: deterministic bytes for generated images and labels.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Generated images: `pixels` NCHW (3×32×32 for CIFAR), one label per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    /// CIFAR-100's coarse labels (fine ones in `labels`).
    pub coarse: Vec<i64>,
}

impl Split {
    pub fn random(gen: &mut Gen, n: usize, image: usize, classes: u64) -> Split {
        Split {
            pixels: gen.bytes(n * image),
            labels: (0..n).map(|_| gen.below(classes) as i64).collect(),
            coarse: (0..n).map(|_| gen.below(20) as i64).collect(),
        }
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn concat(parts: &[Split]) -> Split {
        Split {
            pixels: parts.iter().flat_map(|p| p.pixels.clone()).collect(),
            labels: parts.iter().flat_map(|p| p.labels.clone()).collect(),
            coarse: parts.iter().flat_map(|p| p.coarse.clone()).collect(),
        }
    }
}

pub const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

pub fn cifar100_names(coarse: bool) -> Vec<String> {
    let (n, stem) = if coarse {
        (20, "super")
    } else {
        (100, "class")
    };
    (0..n).map(|i| format!("{stem}_{i}")).collect()
}

fn records(split: &Split, cifar100: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..split.len() {
        if cifar100 {
            out.push(split.coarse[i] as u8);
        }
        out.push(split.labels[i] as u8);
        out.extend_from_slice(&split.pixels[i * 3072..(i + 1) * 3072]);
    }
    out
}

/// `root/cifar-10-batches-bin/`: five training batches of `per_batch` images and a
/// test batch of `n_test`. Returns (train, test).
pub fn cifar10_binary(root: &Path, per_batch: usize, n_test: usize, seed: u64) -> (Split, Split) {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let mut gen = Gen::new(seed);
    let batches: Vec<Split> = (0..5)
        .map(|_| Split::random(&mut gen, per_batch, 3072, 10))
        .collect();
    for (i, b) in batches.iter().enumerate() {
        std::fs::write(
            dir.join(format!("data_batch_{}.bin", i + 1)),
            records(b, false),
        )
        .unwrap();
    }
    let test = Split::random(&mut gen, n_test, 3072, 10);
    std::fs::write(dir.join("test_batch.bin"), records(&test, false)).unwrap();
    std::fs::write(
        dir.join("batches.meta.txt"),
        format!("{}\n\n", CIFAR10_NAMES.join("\n")),
    )
    .unwrap();
    (Split::concat(&batches), test)
}

/// `root/cifar-100-binary/`: train.bin and test.bin, records of coarse label, fine
/// label, pixels.
pub fn cifar100_binary(root: &Path, n_train: usize, n_test: usize, seed: u64) -> (Split, Split) {
    let dir = root.join("cifar-100-binary");
    std::fs::create_dir_all(&dir).unwrap();
    let mut gen = Gen::new(seed);
    let train = Split::random(&mut gen, n_train, 3072, 100);
    let test = Split::random(&mut gen, n_test, 3072, 100);
    std::fs::write(dir.join("train.bin"), records(&train, true)).unwrap();
    std::fs::write(dir.join("test.bin"), records(&test, true)).unwrap();
    std::fs::write(
        dir.join("fine_label_names.txt"),
        cifar100_names(false).join("\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("coarse_label_names.txt"),
        cifar100_names(true).join("\n"),
    )
    .unwrap();
    (train, test)
}

/// Which Python wrote a protocol-2 pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Python {
    /// Python 2's cPickle (how the CIFAR python files were made): `str` is bytes,
    /// written SHORT_BINSTRING/BINSTRING; memo numbers start at 1; numpy 1.x
    /// (`numpy.core.multiarray`, dtype arguments as ints).
    Two,
    /// Python 3's pickle with numpy 2: `str` is BINUNICODE, bytes are
    /// `_codecs.encode(latin-1 text, "latin1")`; memo from 0; repeated objects
    /// (the `encode` global, the "latin1" string) are BINGETs.
    Three,
}

/// A pickled Python value, as far as the CIFAR files need.
pub enum Py {
    Int(i64),
    Str(String),
    Bytes(Vec<u8>),
    Ints(Vec<i64>),
    Strs(Vec<String>),
    /// A C-ordered uint8 numpy array.
    U8Array(Vec<usize>, Vec<u8>),
    Dict(Vec<(&'static str, Py)>),
}

/// Writes `value` as `pickle.dump(value, f, protocol=2)` does under `python`.
///
/// Opcode sequences emitted (q = BINPUT after each new object, r beyond 255):
/// - dict: `}` q `(` key value ... `u` (SETITEMS per 1000 items; one item: `s`)
/// - list: `]` q `(` items `e` (APPENDS per 1000; a single item: `a`)
/// - int: `K` (< 256), `M` (< 65536), `J` (32-bit)
/// - Python 2 str/bytes: `U` len8 (< 256 bytes) or `T` len32; Python 3 str: `X` len32 UTF-8
/// - Python 3 bytes: `c_codecs\nencode\n` q, `X` text q, `X latin1` q, `\x86` q, `R` q
/// - ndarray: `cnumpy.core.multiarray\n_reconstruct\n` q (`numpy._core` for Python 3),
///   `cnumpy\nndarray\n` q, `K\0 \x85` q, bytes "b", `\x87` q, `R` q,
///   `(` `K\x01`, shape tuple, dtype, `\x89` (not Fortran), raw bytes, `t` q, `b`
/// - dtype: `cnumpy\ndtype\n` q, "u1" and (0, 1) as `K` (Python 2) or `\x89 \x88`
///   (Python 3), `\x87` q, `R` q, `(` `K\x03` "|" `N N N J-1 J-1 K\0` `t` q, `b`
///
/// ending with `.` after the protocol header `\x80\x02`.
pub fn pickle(value: &Py, python: Python) -> Vec<u8> {
    let mut p = Pickler {
        out: vec![0x80, 2],
        next: if python == Python::Two { 1 } else { 0 },
        python,
        encode: None,
        latin1: None,
    };
    p.value(value);
    p.out.push(b'.');
    p.out
}

struct Pickler {
    out: Vec<u8>,
    next: u32,
    python: Python,
    encode: Option<u32>,
    latin1: Option<u32>,
}

impl Pickler {
    fn put(&mut self) -> u32 {
        let i = self.next;
        if i < 256 {
            self.out.extend([b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend(i.to_le_bytes());
        }
        self.next += 1;
        i
    }
    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend([b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend(i.to_le_bytes());
        }
    }
    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend([b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(b'M');
            self.out.extend((v as u16).to_le_bytes());
        } else {
            self.out.push(b'J');
            self.out.extend((v as i32).to_le_bytes());
        }
    }
    fn binstring(&mut self, b: &[u8]) {
        if b.len() < 256 {
            self.out.extend([b'U', b.len() as u8]);
        } else {
            self.out.push(b'T');
            self.out.extend((b.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(b);
        self.put();
    }
    fn unicode(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self.put();
    }
    fn str(&mut self, s: &str) {
        match self.python {
            Python::Two => self.binstring(s.as_bytes()),
            Python::Three => self.unicode(s),
        }
    }
    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self.put();
    }
    fn bytes(&mut self, b: &[u8]) {
        if self.python == Python::Two {
            return self.binstring(b);
        }
        match self.encode {
            Some(i) => self.get(i),
            None => {
                self.out.push(b'c');
                self.out.extend_from_slice(b"_codecs\nencode\n");
                self.encode = Some(self.put());
            }
        }
        let text: String = b.iter().map(|&c| c as char).collect();
        self.unicode(&text);
        match self.latin1 {
            Some(i) => self.get(i),
            None => {
                self.out.push(b'X');
                self.out.extend(6u32.to_le_bytes());
                self.out.extend_from_slice(b"latin1");
                self.latin1 = Some(self.put());
            }
        }
        self.out.push(0x86);
        self.put();
        self.out.push(b'R');
        self.put();
    }
    fn batched(&mut self, n: usize, mut item: impl FnMut(&mut Self, usize), many: u8, one: u8) {
        let mut start = 0;
        while start < n {
            let end = (start + 1000).min(n);
            if end - start > 1 {
                self.out.push(b'(');
            }
            for i in start..end {
                item(self, i);
            }
            self.out.push(if end - start > 1 { many } else { one });
            start = end;
        }
    }
    fn value(&mut self, v: &Py) {
        match v {
            Py::Int(i) => self.int(*i),
            Py::Str(s) => self.str(s),
            Py::Bytes(b) => self.bytes(b),
            Py::Ints(items) => {
                self.out.push(b']');
                self.put();
                self.batched(items.len(), |p, i| p.int(items[i]), b'e', b'a');
            }
            Py::Strs(items) => {
                self.out.push(b']');
                self.put();
                self.batched(items.len(), |p, i| p.str(&items[i]), b'e', b'a');
            }
            Py::Dict(items) => {
                self.out.push(b'}');
                self.put();
                self.batched(
                    items.len(),
                    |p, i| {
                        p.str(items[i].0);
                        p.value(&items[i].1);
                    },
                    b'u',
                    b's',
                );
            }
            Py::U8Array(shape, data) => self.array(shape, data),
        }
    }
    fn array(&mut self, shape: &[usize], data: &[u8]) {
        let module = match self.python {
            Python::Two => "numpy.core.multiarray",
            Python::Three => "numpy._core.multiarray",
        };
        self.global(module, "_reconstruct");
        self.global("numpy", "ndarray");
        self.out.extend([b'K', 0, 0x85]);
        self.put();
        self.bytes(b"b");
        self.out.push(0x87);
        self.put();
        self.out.push(b'R');
        self.put();
        self.out.extend([b'(', b'K', 1]);
        for &d in shape {
            self.int(d as i64);
        }
        self.out.push(0x84 + shape.len() as u8);
        self.put();
        self.global("numpy", "dtype");
        self.str("u1");
        match self.python {
            Python::Two => self.out.extend([b'K', 0, b'K', 1]),
            Python::Three => self.out.extend([0x89, 0x88]),
        }
        self.out.push(0x87);
        self.put();
        self.out.push(b'R');
        self.put();
        self.out.extend([b'(', b'K', 3]);
        self.str("|");
        self.out.extend([b'N', b'N', b'N']);
        self.int(-1);
        self.int(-1);
        self.int(0);
        self.out.push(b't');
        self.put();
        self.out.push(b'b');
        self.out.push(0x89);
        self.bytes(data);
        self.out.push(b't');
        self.put();
        self.out.push(b'b');
    }
}

fn batch_dict(split: &Split, cifar100: bool) -> Py {
    let n = split.len();
    let mut items = vec![("data", Py::U8Array(vec![n, 3072], split.pixels.clone()))];
    if cifar100 {
        items.push(("fine_labels", Py::Ints(split.labels.clone())));
        items.push(("coarse_labels", Py::Ints(split.coarse.clone())));
    } else {
        items.push(("labels", Py::Ints(split.labels.clone())));
    }
    items.push(("batch_label", Py::Str("generated batch".into())));
    items.push((
        "filenames",
        Py::Strs((0..n).map(|i| format!("img_{i}.png")).collect()),
    ));
    Py::Dict(items)
}

/// `root/cifar-10-batches-py/` as pickles written by `python`.
pub fn cifar10_python(
    root: &Path,
    per_batch: usize,
    n_test: usize,
    seed: u64,
    python: Python,
) -> (Split, Split) {
    let dir = root.join("cifar-10-batches-py");
    std::fs::create_dir_all(&dir).unwrap();
    let mut gen = Gen::new(seed);
    let batches: Vec<Split> = (0..5)
        .map(|_| Split::random(&mut gen, per_batch, 3072, 10))
        .collect();
    for (i, b) in batches.iter().enumerate() {
        let bytes = pickle(&batch_dict(b, false), python);
        std::fs::write(dir.join(format!("data_batch_{}", i + 1)), bytes).unwrap();
    }
    let test = Split::random(&mut gen, n_test, 3072, 10);
    std::fs::write(
        dir.join("test_batch"),
        pickle(&batch_dict(&test, false), python),
    )
    .unwrap();
    let meta = Py::Dict(vec![
        ("num_cases_per_batch", Py::Int(per_batch as i64)),
        (
            "label_names",
            Py::Strs(CIFAR10_NAMES.iter().map(|s| s.to_string()).collect()),
        ),
        ("num_vis", Py::Int(3072)),
    ]);
    std::fs::write(dir.join("batches.meta"), pickle(&meta, python)).unwrap();
    (Split::concat(&batches), test)
}

/// `root/cifar-100-python/` (train, test, meta) as pickles written by `python`.
pub fn cifar100_python(
    root: &Path,
    n_train: usize,
    n_test: usize,
    seed: u64,
    python: Python,
) -> (Split, Split) {
    let dir = root.join("cifar-100-python");
    std::fs::create_dir_all(&dir).unwrap();
    let mut gen = Gen::new(seed);
    let train = Split::random(&mut gen, n_train, 3072, 100);
    let test = Split::random(&mut gen, n_test, 3072, 100);
    std::fs::write(dir.join("train"), pickle(&batch_dict(&train, true), python)).unwrap();
    std::fs::write(dir.join("test"), pickle(&batch_dict(&test, true), python)).unwrap();
    let meta = Py::Dict(vec![
        ("fine_label_names", Py::Strs(cifar100_names(false))),
        ("coarse_label_names", Py::Strs(cifar100_names(true))),
    ]);
    std::fs::write(dir.join("meta"), pickle(&meta, python)).unwrap();
    (train, test)
}

/// An IDX file of unsigned bytes; gzipped when `gz` (then `.gz` is appended).
pub fn idx(path: &Path, dims: &[u32], data: &[u8], gz: bool) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    if gz {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).unwrap();
        let name = format!("{}.gz", path.file_name().unwrap().to_string_lossy());
        std::fs::write(path.with_file_name(name), e.finish().unwrap()).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// The four Fashion-MNIST IDX files (28×28 images, labels 0..10). Returns
/// (train, test) with 1-channel pixels.
pub fn fashion_mnist(
    root: &Path,
    n_train: usize,
    n_test: usize,
    gz: bool,
    seed: u64,
) -> (Split, Split) {
    std::fs::create_dir_all(root).unwrap();
    let mut gen = Gen::new(seed);
    let mut out = Vec::new();
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let s = Split::random(&mut gen, n, 784, 10);
        idx(
            &root.join(format!("{prefix}-images-idx3-ubyte")),
            &[n as u32, 28, 28],
            &s.pixels,
            gz,
        );
        let labels: Vec<u8> = s.labels.iter().map(|&l| l as u8).collect();
        idx(
            &root.join(format!("{prefix}-labels-idx1-ubyte")),
            &[n as u32],
            &labels,
            gz,
        );
        out.push(s);
    }
    let test = out.pop().unwrap();
    (out.pop().unwrap(), test)
}

/// An RGB image file from CHW planes; the format follows the extension.
pub fn image_file(path: &Path, w: u32, h: u32, chw: &[u8]) {
    let plane = (w * h) as usize;
    let mut hwc = vec![0u8; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            hwc[3 * i + c] = chw[c * plane + i];
        }
    }
    image::save_buffer(path, &hwc, w, h, image::ColorType::Rgb8).unwrap();
}

/// CINIC-10's `train/ valid/ test/CLASS/*.png` with `per_class` 32×32 PNGs in each
/// class of each split. Returns (train, test) in class then file-name order.
pub fn cinic(root: &Path, per_class: usize, seed: u64) -> (Split, Split) {
    let mut gen = Gen::new(seed);
    let mut out = Vec::new();
    for split in ["train", "valid", "test"] {
        let mut s = Split {
            pixels: Vec::new(),
            labels: Vec::new(),
            coarse: Vec::new(),
        };
        for (label, class) in CIFAR10_NAMES.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let px = gen.bytes(3072);
                image_file(&dir.join(format!("img{i:05}.png")), 32, 32, &px);
                s.pixels.extend(px);
                s.labels.push(label as i64);
            }
        }
        out.push(s);
    }
    let test = out.pop().unwrap();
    out.pop();
    (out.pop().unwrap(), test)
}

/// The WordNet-id-like folder name of ImageNet class `index` (sorted = index order).
pub fn wnid(index: usize) -> String {
    format!("n{index:08}")
}

/// An ImageNet layout: 1000 class folders in `train/` and `val/`; every class
/// whose index is in `filled` gets `per_class` JPEG images of `w`×`h` with one
/// flat colour per channel, generated from the class index and file number.
pub fn imagenet(root: &Path, filled: &[usize], per_class: usize, w: u32, h: u32) {
    for split in ["train", "val"] {
        for index in 0..1000 {
            let dir = root.join(split).join(wnid(index));
            std::fs::create_dir_all(&dir).unwrap();
            if !filled.contains(&index) {
                continue;
            }
            for i in 0..per_class {
                let colour = flat_colour(index, i);
                let chw: Vec<u8> = colour
                    .iter()
                    .flat_map(|&c| std::iter::repeat_n(c, (w * h) as usize))
                    .collect();
                image_file(&dir.join(format!("{}_{i}.JPEG", wnid(index))), w, h, &chw);
            }
        }
    }
}

/// The colour of image `i` of class `index` in [`imagenet`]: multiples of 16 so
/// JPEG's rounding stays well below the test's tolerance.
pub fn flat_colour(index: usize, i: usize) -> [u8; 3] {
    [
        (index % 16 * 16) as u8,
        (i % 16 * 16) as u8,
        ((index / 16) % 16 * 16) as u8,
    ]
}
