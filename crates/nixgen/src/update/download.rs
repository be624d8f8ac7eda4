//! `--verify`: downloads every new pin and checks it; a failure keeps the
//! old pin.

use futures_util::{StreamExt as _, stream};

use super::plan::{Action, Actions, fail};
use crate::classify::Pin;
use crate::failure::{Context as _, Failure};
use crate::registry::Registry;
use crate::report::Report;
use crate::verify::{Download, VerifyError};

pub(super) async fn verify_changes(
    registry: &Registry,
    jobs: usize,
    actions: &mut Actions,
    report: &mut Report,
) {
    let pins: Vec<(Pin, Option<String>)> = actions
        .values()
        .filter_map(|a| match a {
            Action::Add(pin, _) => Some((pin.clone(), None)),
            Action::Update {
                pin,
                old,
                new_pin: true,
                ..
            } => Some((pin.clone(), old.clone())),
            _ => None,
        })
        .collect();
    let failures: Vec<(Pin, Option<String>, Failure)> = stream::iter(pins)
        .map(|(pin, old)| async move {
            let e = verify_one(registry, &pin).await.err()?;
            Some((pin, old, e))
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    for (pin, old, e) in failures {
        actions.remove(&pin.name);
        fail(report, &pin.name, old, &e);
    }
}

async fn verify_one(registry: &Registry, pin: &Pin) -> Result<(), Failure> {
    let url = registry.tarball_url(&pin.name, &pin.version);
    let failed = || {
        format!(
            "--verify failed for {} {} from {url}",
            pin.name.npm(),
            pin.version
        )
    };
    let mut download = Download::new()
        .map_err(VerifyError::Spool)
        .with_context(failed)?;
    registry
        .tarball(&url, &mut download)
        .await
        .with_context(|| {
            format!(
                "cannot download {} {} for --verify",
                pin.name.npm(),
                pin.version
            )
        })?;
    let checked = {
        let pin = pin.clone();
        tokio::task::spawn_blocking(move || download.check(&pin)).await
    };
    match checked {
        Ok(r) => r.with_context(failed),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}
