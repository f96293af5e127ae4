//! Reading a large batch on one thread while a second one takes the items already read.
//!
//! Reading a batch (serde_json) and screening its items cost about three to one, and both
//! run on one core when they share a thread. Handing the items over in runs lets screening
//! run beside the reading instead of after each item, so a large batch is judged in about
//! the time it takes to read it. Nothing is sent anywhere before the whole batch has been
//! read and the sink is finished (see [`crate::screen::Screening::finish`]).

use std::sync::mpsc::{SyncSender, sync_channel};

use crate::threatq::{Item, ItemSink};

/// Items handed over at a time: enough to make a handover cheap, few enough to keep the
/// items in cache between the two threads.
const RUN_ITEMS: usize = 512;

/// Runs handed over but not yet taken, at most: bounds the memory between the threads.
const RUNS_IN_FLIGHT: usize = 8;

/// The sink the reading thread fills: items gathered into runs, each run sent on.
pub struct Handoff<'a> {
    run: Vec<Item<'a>>,
    to_taker: SyncSender<Vec<Item<'a>>>,
}

impl<'a> ItemSink<'a> for Handoff<'a> {
    fn take(&mut self, item: Item<'a>) {
        self.run.push(item);
        if self.run.len() == RUN_ITEMS {
            let run = std::mem::replace(&mut self.run, Vec::with_capacity(RUN_ITEMS));
            // Fails only when the taker is gone, which happens only when its sink panicked;
            // that panic is raised again once the read ends.
            let _ = self.to_taker.send(run);
        }
    }
}

/// Runs `read` on this thread with a [`Handoff`] as its sink while `sink` takes the items,
/// in the order read, on a second thread. Returns `sink` once every item has reached it,
/// with what `read` returned (the sink holds part of the batch if the read failed); `None`
/// when no thread could be started, with `read` not run: then read on one thread.
pub fn take_beside<'a, S, R>(sink: S, read: impl FnOnce(&mut Handoff<'a>) -> R) -> Option<(S, R)>
where
    S: ItemSink<'a> + Send,
{
    std::thread::scope(|scope| {
        let (to_taker, runs) = sync_channel::<Vec<Item<'a>>>(RUNS_IN_FLIGHT);
        let taker = std::thread::Builder::new()
            .name("screening".into())
            .spawn_scoped(scope, move || {
                let mut sink = sink;
                for run in runs {
                    for item in run {
                        sink.take(item);
                    }
                }
                sink
            })
            .ok()?;
        let mut handoff = Handoff {
            run: Vec::with_capacity(RUN_ITEMS),
            to_taker,
        };
        let read = read(&mut handoff);
        let Handoff { run, to_taker } = handoff;
        let _ = to_taker.send(run);
        drop(to_taker);
        let sink = taker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Some((sink, read))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threatq::{Indicator, ItemId};

    #[test]
    fn every_item_reaches_the_sink_once_and_in_order() {
        for count in [
            0,
            1,
            RUN_ITEMS - 1,
            RUN_ITEMS,
            RUN_ITEMS + 1,
            10 * RUN_ITEMS + 7,
        ] {
            let item = |n: usize| {
                Item::Indicator(Indicator {
                    id: Some(ItemId::Number(n.into())),
                    ..Indicator::default()
                })
            };
            let (taken, read) = take_beside(Vec::new(), |handoff| {
                for n in 0..count {
                    handoff.take(item(n));
                }
                count
            })
            .expect("a thread starts");
            assert_eq!(read, count);
            assert_eq!(taken, (0..count).map(item).collect::<Vec<_>>());
        }
    }

    struct Failing;

    impl<'a> ItemSink<'a> for Failing {
        fn take(&mut self, _item: Item<'a>) {
            panic!("the sink failed");
        }
    }

    #[test]
    #[should_panic(expected = "the sink failed")]
    fn a_sink_that_panics_ends_the_read_with_its_panic_not_a_hang() {
        // More runs than the channel holds: the reader must not wait for a taker that is gone.
        let _ = take_beside(Failing, |handoff| {
            for _ in 0..(RUNS_IN_FLIGHT + 2) * RUN_ITEMS {
                handoff.take(Item::NotAnObject);
            }
        });
    }
}
