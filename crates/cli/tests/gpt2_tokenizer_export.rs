//! A run on the `gpt2` tokenizer exports GPT-2's vocabulary and merges: Nibble's own GGUF import,
//! llama.cpp (GGUF) and transformers (`tokenizer.json`) tokenize text exactly as tiktoken did in
//! training. The clients run when installed (required with NIBBLE_PY_REFS=1).

use std::fs;

use burn::backend::Flex;
use nibble_data::{Gpt2Tokenizer, Tokenizer};
use nibble_train::sections::Recipe;
use nibble_train::trainer::Parts;

mod common;
use common::llama::{llama_cpp_available, py, transformers_available};
use common::{export, nibble, scratch};

const RECIPE: &str = r#"
[run]
name = "g"
steps = 1
batch_size = 1

[model]
preset = "tiny"
seq_len = 32
n_layers = 1

[data]
source = "sample"
tokenizer = "gpt2"

[eval]
batches = 1

[log]
tensorboard = false
"#;

const TEXT: &str = "Fair is foul, and foul is fair: 1606's witches' café—naïve 😀  \n\tend";

#[test]
fn gpt2_runs_export_their_tokenizer() {
    let d = scratch("gpt2-tok");
    fs::write(d.join("r.toml"), RECIPE).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let gguf = d.join("g.gguf");
    export(&d, "runs/g", "gguf-f16", &gguf);
    let hf = d.join("hf");
    export(&d, "runs/g", "hf", &hf);
    let want: Vec<u32> = Gpt2Tokenizer::new().unwrap().encode(TEXT);
    let list = want
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");

    // Nibble's own import of the file: its BPE from the GGUF vocabulary and merges.
    let text = format!(
        "[init]\ngguf = {:?}\n[data]\nsource = \"sample\"\ntokenizer = \"model\"\ncache_dir = {:?}\n",
        gguf.display().to_string(),
        d.join("cache").display().to_string()
    );
    let r: Recipe = toml::from_str(&text).unwrap();
    let parts = Parts::<Flex>::build(&r, false, &Default::default()).unwrap();
    assert_eq!(parts.tokenizer.encode(TEXT), want, "Nibble's GGUF import");

    if llama_cpp_available() {
        let ids = py(
            "llama_cpp_tokenize.py",
            &[gguf.as_os_str(), TEXT.as_ref()],
            "llama.cpp",
        );
        assert_eq!(ids.trim(), list, "llama.cpp");
        println!("llama.cpp tokenizes as tiktoken: {} tokens", want.len());
    }
    if transformers_available() {
        let out = py(
            "transformers_generate.py",
            &[hf.as_os_str(), TEXT.as_ref(), "Fair is".as_ref()],
            "transformers",
        );
        assert_eq!(out.lines().next().unwrap(), list, "transformers");
        println!("transformers tokenizes as tiktoken: {} tokens", want.len());
    }
    let _ = fs::remove_dir_all(&d);
}
