//! The runtime session on the fixtures: greedy generation from ids and
//! pixel crops reproduces transformers' `generate`, and reusing the cache
//! across turns gives exactly what a fresh one-shot run gives.

use anyhow::{Result, ensure};
use model::{CropPatches, Lfm2Vl};
use runtime::sampling::SamplingConfig;
use runtime::session::{Event, Finish, Session, StopConfig};
use tensor::cpu::{CpuBackend, Isa};
use tests::Case;

fn session(case: &Case, max_len: usize) -> Result<Session<CpuBackend>> {
    let be = CpuBackend::with(Isa::best(), 2)?;
    let model = Lfm2Vl::load(&case.model_dir()?, &be)?;
    Ok(Session::new(be, model, max_len)?)
}

/// A case's prompt ids, transformers' greedy ids and its pixel values
/// (empty without images).
fn prompt_and_greedy(case: &Case) -> Result<(Vec<u32>, Vec<u32>, Vec<f32>)> {
    let ids = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let want = case.generated_ids()?.iter().map(|&i| i as u32).collect();
    let pv = if case.crops()?.is_empty() {
        Vec::new()
    } else {
        case.f32("pixel_values")?
    };
    Ok((ids, want, pv))
}

fn greedy(n: usize) -> (SamplingConfig, StopConfig) {
    (
        SamplingConfig::default(),
        StopConfig {
            max_new_tokens: n,
            stop_ids: vec![],
        },
    )
}

#[test]
fn session_greedy_matches_transformers_generate_on_every_case() -> Result<()> {
    for name in Case::names()? {
        let case = Case::load(&name)?;
        let (ids, want, pv) = prompt_and_greedy(&case)?;
        let views = case.crop_patches(&pv)?;
        let mut s = session(&case, ids.len() + want.len() + 1)?;
        let (samp, stop) = greedy(want.len());
        let mut streamed = Vec::new();
        let g = s.generate(&ids, &views, &samp, &stop, &mut |e| {
            if let Event::Token { id } = e {
                streamed.push(*id);
            }
            true
        })?;
        ensure!(g.ids == want, "{name}: got {:?}, want {want:?}", g.ids);
        ensure!(
            streamed == want && g.finish == Finish::Length,
            "{name}: streamed {streamed:?}"
        );
    }
    Ok(())
}

/// Turn 1 on a prefix of the conversation, then turn 2 on the whole of it:
/// the session rolls back to its turn-1 snapshot and reuses that prefix;
/// the tokens equal a fresh session's one-shot run.
#[test]
fn session_two_turns_equal_one_shot() -> Result<()> {
    for name in ["multi_turn", "text_only", "two_images"] {
        let case = Case::load(name)?;
        let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
        let pv = if case.crops()?.is_empty() {
            Vec::new()
        } else {
            case.f32("pixel_values")?
        };
        let views = case.crop_patches(&pv)?;
        let (samp, stop) = greedy(8);
        let mut fresh = session(&case, 512)?;
        let one_shot = fresh.generate(&ids, &views, &samp, &stop, &mut |_| true)?;

        // Turn 1: cut at the end of the last image run (or half way for text).
        let image = 396;
        let cut = ids
            .iter()
            .rposition(|&i| i == image)
            .map_or(ids.len() / 2, |p| p + 3);
        let mut s = session(&case, 512)?;
        let t1 = s.generate(&ids[..cut], &views, &samp, &stop, &mut |_| true)?;
        ensure!(t1.reused_tokens == 0);
        let t2 = s.generate(&ids, &views, &samp, &stop, &mut |_| true)?;
        ensure!(
            t2.reused_tokens == cut,
            "{name}: reused {} of {cut}",
            t2.reused_tokens
        );
        ensure!(
            t2.ids == one_shot.ids,
            "{name}: two turns {:?} vs one shot {:?}",
            t2.ids,
            one_shot.ids
        );

        // Turn 3 extends turn 2's prompt and answer exactly: everything is reused.
        let mut ext: Vec<u32> = ids.clone();
        ext.extend(&t2.ids);
        ext.extend([7, 10]);
        let t3 = s.generate(&ext, &views, &samp, &stop, &mut |_| true)?;
        ensure!(
            t3.reused_tokens == ids.len() + t2.ids.len(),
            "{name}: reused {}",
            t3.reused_tokens
        );
        let mut check = session(&case, 512)?;
        let t3_fresh = check.generate(&ext, &views, &samp, &stop, &mut |_| true)?;
        ensure!(
            t3.ids == t3_fresh.ids,
            "{name}: turn 3 {:?} vs fresh {:?}",
            t3.ids,
            t3_fresh.ids
        );
    }
    Ok(())
}

#[test]
fn session_errors_are_typed() -> Result<()> {
    let case = Case::load("text_only")?;
    let mut s = session(&case, 8)?;
    let (samp, stop) = greedy(4);
    let e = s
        .generate(&[1; 9], &[], &samp, &stop, &mut |_| true)
        .unwrap_err();
    ensure!(e.to_string().contains("exceeds the context"), "{e}");
    let e = s
        .generate(&[], &[], &samp, &stop, &mut |_| true)
        .unwrap_err();
    ensure!(e.to_string().contains("empty"), "{e}");
    // An <image> token with no image behind it.
    let e = s
        .generate(&[1, 396, 2], &[], &samp, &stop, &mut |_| true)
        .unwrap_err();
    ensure!(e.to_string().contains("<image>"), "{e}");
    Ok(())
}

/// Issue 6: a two-turn chat through the Engine (the second turn reusing the
/// first turn's caches) gives the same tokens as a fresh engine's one-shot
/// run of the whole conversation; a fork of that engine starts empty on the
/// same model and gives the one-shot tokens too.
#[test]
fn engine_two_turn_chat_equals_one_shot() -> Result<()> {
    use model::preprocess::{DecodeLimits, load_image};
    use model::prompt::{ChatMessage, ContentPart};
    use runtime::engine::{BackendChoice, Engine, EngineOptions, Request};

    let case = Case::load("single_image")?;
    let dir = case.model_dir()?;
    let dir = dir.to_str().unwrap_or_default();
    let opts = EngineOptions {
        backend: BackendChoice::Cpu,
        cpu: tensor::cpu::CpuOptions {
            threads: Some(2),
            ..Default::default()
        },
        max_len: 1024,
        ..Default::default()
    };
    let img = load_image(
        &tests::fixture_path("cases/images/small_100x150.png"),
        &DecodeLimits::default(),
    )?;
    let turn1 = vec![
        ChatMessage::text("system", "You are terse."),
        ChatMessage::parts(
            "user",
            vec![ContentPart::image(), ContentPart::text("What is this?")],
        ),
    ];
    let images = [img.clone()];
    let mut req = Request::new(&turn1);
    req.images = &images;
    req.max_new_tokens = 6;

    let mut chat = Engine::load(dir, &opts)?;
    let first = chat.generate(&req, |_| true)?;
    ensure!(first.generation.reused_tokens == 0);
    let mut turn2 = turn1.clone();
    turn2.push(ChatMessage::text("assistant", first.text.clone()));
    turn2.push(ChatMessage::text("user", "And the colours?"));
    req.messages = &turn2;
    let second = chat.generate(&req, |_| true)?;
    ensure!(
        second.generation.reused_tokens >= first.prompt_ids.len(),
        "turn 2 reused {} tokens, turn 1's prompt had {}",
        second.generation.reused_tokens,
        first.prompt_ids.len()
    );
    ensure!(
        second.generation.image_time.is_zero(),
        "the image must not be encoded again"
    );

    let mut fresh = Engine::load(dir, &opts)?;
    let one_shot = fresh.generate(&req, |_| true)?;
    ensure!(one_shot.prompt_ids == second.prompt_ids);
    ensure!(
        one_shot.generation.ids == second.generation.ids,
        "{:?} vs {:?}",
        one_shot.generation.ids,
        second.generation.ids
    );
    ensure!(one_shot.text == second.text);

    // A fork of the two-turn engine is a new, empty conversation on the same
    // model: nothing reused, the one-shot tokens.
    let mut forked = chat.fork()?;
    let f = forked.generate(&req, |_| true)?;
    ensure!(f.generation.reused_tokens == 0, "a fork starts empty");
    ensure!(f.generation.ids == one_shot.generation.ids && f.text == one_shot.text);
    Ok(())
}

/// The same placeholder ids with a different image must not reuse the old
/// image's cache: reuse stops at the first changed image, and the result
/// equals a fresh run.
#[test]
fn session_changed_image_is_not_reused() -> Result<()> {
    let case = Case::load("two_images")?;
    let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let pv = case.f32("pixel_values")?;
    let views = case.crop_patches(&pv)?;
    // Change the second image (crops 1..): flip the sign of its patches.
    let flipped: Vec<Vec<f32>> = views[1..]
        .iter()
        .map(|c| c.patches.iter().map(|v| -v).collect())
        .collect();
    let mut changed: Vec<CropPatches> = vec![CropPatches {
        patches: views[0].patches,
        h: views[0].h,
        w: views[0].w,
    }];
    for (c, f) in views[1..].iter().zip(&flipped) {
        changed.push(CropPatches {
            patches: f,
            h: c.h,
            w: c.w,
        });
    }
    let (samp, stop) = greedy(6);
    let mut s = session(&case, 512)?;
    let first = s.generate(&ids, &views, &samp, &stop, &mut |_| true)?;
    // Turn 2 extends turn 1's tokens exactly, but the second image changed.
    let mut ext = ids.clone();
    ext.extend(&first.ids);
    ext.extend([7, 10]);
    let again = s.generate(&ext, &changed, &samp, &stop, &mut |_| true)?;
    let first_img2 = ids
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t == 396)
        .nth(views[0].h * views[0].w / 4)
        .map(|(p, _)| p);
    ensure!(
        Some(again.reused_tokens) <= first_img2,
        "reused {} tokens past the changed image",
        again.reused_tokens
    );
    let mut fresh = session(&case, 512)?;
    let want = fresh.generate(&ext, &changed, &samp, &stop, &mut |_| true)?;
    ensure!(
        again.ids == want.ids,
        "{:?} vs fresh {:?}",
        again.ids,
        want.ids
    );
    Ok(())
}

/// Sessions forked from one share its model (one load, `Arc`, no weights
/// copied) and keep their own caches: two conversations on different cases
/// of the same checkpoint, run at once on two threads, each produce
/// transformers' greedy ids, and the model behind them is one allocation.
#[test]
fn forked_sessions_share_the_model_across_threads() -> Result<()> {
    fn shareable<T: Send + Sync>() {}
    shareable::<Lfm2Vl<CpuBackend>>();
    #[cfg(feature = "wgpu")]
    shareable::<Lfm2Vl<tensor::wgpu::WgpuBackend>>();

    // Every case of the checkpoint `single_image` uses, text and images.
    let dir = Case::load("single_image")?.model_dir()?;
    let mut cases = Vec::new();
    for name in Case::names()? {
        let case = Case::load(&name)?;
        if case.model_dir()? == dir {
            cases.push(case);
        }
    }
    ensure!(
        cases.len() >= 3,
        "{} cases share {}",
        cases.len(),
        dir.display()
    );
    let first = session(&cases[0], 1024)?;
    let forks: Vec<Session<CpuBackend>> = cases
        .iter()
        .map(|_| first.fork(1024))
        .collect::<runtime::error::Result<_>>()?;
    ensure!(
        forks
            .iter()
            .all(|s| std::sync::Arc::ptr_eq(&s.model, &first.model))
    );
    std::thread::scope(|scope| {
        let runs: Vec<_> = forks
            .into_iter()
            .zip(&cases)
            .map(|(mut s, case)| {
                scope.spawn(move || -> Result<()> {
                    let (ids, want, pv) = prompt_and_greedy(case)?;
                    let views = case.crop_patches(&pv)?;
                    let (samp, stop) = greedy(want.len());
                    let g = s.generate(&ids, &views, &samp, &stop, &mut |_| true)?;
                    ensure!(
                        g.ids == want,
                        "{}: got {:?}, want {want:?}",
                        case.name,
                        g.ids
                    );
                    Ok(())
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join()
                    .map_err(|_| anyhow::anyhow!("a session thread panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(())
}
