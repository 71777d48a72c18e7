//! Running one fallible step per item with a few in flight at once: the
//! copies of peering and backfill (one object per request and round trip)
//! overlap instead of waiting for each other.

use std::future::Future;

use tokio::task::JoinSet;

/// Objects copied at once by one peering or backfill.
pub const COPIES_AT_ONCE: usize = 8;

/// Runs `step` on every item, at most `limit` at a time, each on a task
/// of its own; the first error is returned and the steps still running
/// are cancelled.
pub async fn each<T, F, Fut>(
    limit: usize,
    items: impl IntoIterator<Item = T>,
    step: F,
) -> Result<(), String>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for item in items {
        while tasks.len() >= limit.max(1) {
            finished(tasks.join_next().await)?;
        }
        tasks.spawn(step(item));
    }
    while let Some(r) = tasks.join_next().await {
        finished(Some(r))?;
    }
    Ok(())
}

fn finished(
    joined: Option<Result<Result<(), String>, tokio::task::JoinError>>,
) -> Result<(), String> {
    match joined {
        None | Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(format!("copy task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn runs_every_item_within_the_limit_and_stops_at_an_error() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let step = |i: usize| {
            let (running, most, done) = (running.clone(), most.clone(), done.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                if i == 1000 {
                    Err(format!("item {i}"))
                } else {
                    Ok(())
                }
            }
        };
        each(3, 0..20, step).await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(each(3, [1, 1000, 2], step).await, Err("item 1000".into()));
    }
}
