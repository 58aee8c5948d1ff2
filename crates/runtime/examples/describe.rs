//! Describe an image with the embeddable API, streaming the reply.
//!
//! ```sh
//! cargo run --release -p runtime --example describe -- MODEL IMAGE "What is in this image?"
//! # e.g. with the tiny test checkpoint (random weights, so the text is noise):
//! cargo run -p runtime --example describe -- tests/fixtures/models/tiny-450m \
//!     tests/fixtures/cases/images/small_100x150.png "Describe it."
//! ```

use std::io::Write;

use runtime::engine::{BackendChoice, Engine, EngineOptions, Progress, Request};
use runtime::model::preprocess::{DecodeLimits, load_image};
use runtime::model::prompt::{ChatMessage, ContentPart};
use runtime::session::Event;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, image, prompt] = args.as_slice() else {
        return Err("usage: describe MODEL IMAGE PROMPT".into());
    };
    let mut engine = Engine::load(model, &EngineOptions::from_env(BackendChoice::Auto)?)?;
    let messages = [ChatMessage::parts(
        "user",
        vec![ContentPart::image(), ContentPart::text(prompt.as_str())],
    )];
    let images = [load_image(image.as_ref(), &DecodeLimits::default())?];
    let mut req = Request::new(&messages);
    req.images = &images;
    req.max_new_tokens = 64;
    let out = engine.generate(&req, |progress| match progress {
        Progress::Text(piece) => {
            print!("{piece}");
            std::io::stdout().flush().is_ok()
        }
        Progress::Event(Event::ImagesEncoded { crops, elapsed }) => {
            eprintln!("[{crops} crops encoded in {elapsed:?}]");
            true
        }
        Progress::Event(Event::Prefilled {
            computed, elapsed, ..
        }) => {
            eprintln!("[{computed} prompt tokens in {elapsed:?}]");
            true
        }
        Progress::Event(Event::Token { .. }) => true,
    })?;
    println!();
    eprintln!(
        "[{} tokens at {:.1} tok/s]",
        out.generation.ids.len(),
        out.decode_tok_s()
    );
    Ok(())
}
