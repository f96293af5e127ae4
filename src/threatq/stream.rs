//! Reading a batch body while it arrives, chunk by chunk, keeping only the item being read.
//!
//! serde_json reads a whole slice far faster than a byte stream (`from_reader` took three
//! to five times as long over the 100k collection), so each item is read from a slice of the
//! bytes at hand, with serde_json, and made owned before its bytes are dropped. What lies
//! around the item lists (the form, the overrides, ThreatQ's own keys of a page) is copied
//! into a small *skeleton* with the lists left empty, and the skeleton is read at the end by
//! [`super::read`], exactly as a whole body would be: the overrides, stray keys, keys given
//! twice and every refusal come from the one reader.
//!
//! A body that goes wrong anywhere is copied into the skeleton from there, as far as it takes
//! to show the error (so a broken start is refused without waiting for the rest), with a `0`
//! standing for each item already read: the skeleton read refuses it at the same place,
//! naming the same item, and its line and column are mapped back to the body's.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny};

use super::item::{ItemSeed, Text};
use super::read::{self, ReadError, SkeletonPlace};
use super::{BodyOverrides, Item, ItemSink, KeyReading};

/// Reads a body arriving as `chunks`, handing each item to a sink from `new_sink` as soon
/// as its last byte is here; returns the sink and the body's overrides. Refusals are those
/// of [`super::read_batch`] over the whole body, at the same line and column.
///
/// `beside`: the sink takes the items on a second thread while this one reads (see
/// [`super::handoff`]), for a large body.
pub fn read_streamed<I, S>(
    mut chunks: I,
    objects_per_run: usize,
    beside: bool,
    new_sink: impl Fn() -> S,
) -> Result<(S, BodyOverrides), ReadError>
where
    I: Iterator<Item = Bytes>,
    S: ItemSink<'static> + Send,
{
    let read_beside = beside
        .then(|| {
            super::handoff::take_beside(new_sink(), |handoff| {
                read_into(&mut chunks, objects_per_run, handoff)
            })
        })
        .flatten();
    let (sink, read) = read_beside.unwrap_or_else(|| {
        let mut sink = new_sink();
        let read = read_into(&mut chunks, objects_per_run, &mut sink);
        (sink, read)
    });
    Ok((sink, read?))
}

/// [`read_streamed`] on this thread, into `sink`.
fn read_into<I, S>(
    chunks: I,
    objects_per_run: usize,
    sink: &mut S,
) -> Result<BodyOverrides, ReadError>
where
    I: Iterator<Item = Bytes>,
    S: ItemSink<'static>,
{
    let mut framer = Framer {
        input: Input::new(chunks),
        skeleton: Vec::new(),
        max_items: objects_per_run,
        streamed: 0,
        skeleton_mark: 0,
    };
    let copied = match framer.top(sink) {
        Ok(()) => None,
        Err(from) => Some(framer.copy_rest(from)),
    };
    read::read_skeleton(
        &framer.skeleton,
        objects_per_run,
        framer.streamed,
        copied.as_ref(),
        sink,
    )
}

/// Where the skeleton stops following the structure and takes the rest of the body as it
/// is: `at` (a body offset) after `placeholders` items of the open list were read.
struct CopyFrom {
    at: usize,
    /// The skeleton's length when the body was at `at`.
    keep: usize,
    placeholders: usize,
}

struct Framer<I> {
    input: Input<I>,
    skeleton: Vec<u8>,
    max_items: usize,
    /// Items read from every list so far, those past `max_items` (not built) included.
    streamed: usize,
    /// The skeleton's length when the input's mark was set.
    skeleton_mark: usize,
}

impl<I: Iterator<Item = Bytes>> Framer<I> {
    /// The top-level value: an array of items, or an object; anything else is the
    /// skeleton read's to refuse.
    fn top<S: ItemSink<'static>>(&mut self, sink: &mut S) -> Result<(), CopyFrom> {
        let here = self.copy_from(0);
        match self.input.peek() {
            None => return Ok(()),
            Some(b'[') => {
                self.input.advance(1);
                self.skeleton.push(b'[');
                self.list(sink)?;
            }
            Some(b'{') => {
                self.input.advance(1);
                self.skeleton.push(b'{');
                self.object(sink)?;
            }
            Some(_) => return Err(here),
        }
        // Past the value only whitespace may follow.
        self.set_mark();
        match self.input.peek() {
            None => Ok(()),
            Some(_) => Err(self.copy_from(0)),
        }
    }

    /// The members of an object after its `{`, through its `}`: a `data` or `indicators`
    /// array is read item by item, every other member copied to the skeleton.
    fn object<S: ItemSink<'static>>(&mut self, sink: &mut S) -> Result<(), CopyFrom> {
        self.set_mark();
        let mut first = true;
        loop {
            let wrong = self.copy_from(0);
            match self.input.peek() {
                Some(b'}') if first => {
                    self.input.advance(1);
                    self.skeleton.push(b'}');
                    return Ok(());
                }
                Some(b'"') => {}
                _ => return Err(wrong),
            }
            let key_start = self.input.pos;
            let is_list_key = self
                .input
                .parse(|bytes| {
                    attempt::<Text, _>(bytes, |key| matches!(key.0.as_ref(), "data" | "indicators"))
                })
                .ok_or(wrong)?;
            self.copy_consumed(key_start);
            if self.input.peek() != Some(b':') {
                return Err(self.wrong_member());
            }
            self.input.advance(1);
            self.skeleton.push(b':');
            match self.input.peek() {
                Some(b'[') if is_list_key => {
                    self.input.advance(1);
                    self.skeleton.push(b'[');
                    self.list(sink)?;
                }
                Some(_) => {
                    let value_start = self.input.pos;
                    self.input
                        .parse(|bytes| attempt::<IgnoredAny, _>(bytes, drop))
                        .ok_or_else(|| self.wrong_member())?;
                    self.copy_consumed(value_start);
                }
                None => return Err(self.wrong_member()),
            }
            // The member is whole: what follows is copied from here if it goes wrong.
            self.set_mark();
            match self.input.peek() {
                Some(b',') => {
                    self.input.advance(1);
                    self.skeleton.push(b',');
                    first = false;
                }
                Some(b'}') => {
                    self.input.advance(1);
                    self.skeleton.push(b'}');
                    return Ok(());
                }
                _ => return Err(self.wrong_member()),
            }
        }
    }

    /// A member that went wrong: copied from the end of the last whole one.
    fn wrong_member(&self) -> CopyFrom {
        self.copy_from(0)
    }

    /// Marks the input where a copy would begin, after what is whole.
    fn set_mark(&mut self) {
        self.input.mark = self.input.pos;
        self.skeleton_mark = self.skeleton.len();
    }

    /// A copy from the mark, after `placeholders` items of the open list.
    fn copy_from(&self, placeholders: usize) -> CopyFrom {
        CopyFrom {
            at: self.input.mark,
            keep: self.skeleton_mark,
            placeholders,
        }
    }

    /// The items of a list after its `[`, through its `]`; the skeleton keeps the list
    /// empty.
    fn list<S: ItemSink<'static>>(&mut self, sink: &mut S) -> Result<(), CopyFrom> {
        self.set_mark();
        let mut read = 0usize;
        let mut first = true;
        loop {
            let wrong = |framer: &Self, read: usize| framer.copy_from(read);
            match self.input.peek() {
                Some(b']') if first => break,
                Some(_) => {}
                None => return Err(wrong(self, read)),
            }
            if self.streamed < self.max_items {
                let item = self
                    .input
                    .parse(|bytes| match attempt::<RawItem, _>(bytes, |item| item.0) {
                        // Read again with keys as text: decides, as for a whole body.
                        Attempt::Bad => attempt::<CheckedItem, _>(bytes, |item| item.0),
                        other => other,
                    })
                    .ok_or_else(|| wrong(self, read))?;
                sink.take(item);
            } else {
                // Past OBJECTS_PER_RUN: checked and counted, never built.
                self.input
                    .parse(|bytes| attempt::<IgnoredAny, _>(bytes, drop))
                    .ok_or_else(|| wrong(self, read))?;
            }
            read += 1;
            self.streamed += 1;
            self.set_mark();
            match self.input.peek() {
                Some(b',') => {
                    self.input.advance(1);
                    first = false;
                }
                Some(b']') => break,
                _ => return Err(wrong(self, read)),
            }
        }
        self.input.advance(1);
        self.skeleton.push(b']');
        Ok(())
    }

    /// Copies the bytes read since `start` (a body offset, still held) to the skeleton.
    fn copy_consumed(&mut self, start: usize) {
        let held = self.input.held(start, self.input.pos);
        self.skeleton.extend_from_slice(held);
    }

    /// Copies the rest of the body, from `from.at`, after a `0` for each item the open list
    /// has had, up to where it goes wrong; returns where the copy begins, to map the
    /// skeleton's positions back.
    fn copy_rest(&mut self, from: CopyFrom) -> SkeletonPlace {
        self.skeleton.truncate(from.keep);
        for n in 0..from.placeholders {
            if n > 0 {
                self.skeleton.push(b',');
            }
            self.skeleton.push(b'0');
        }
        let (newlines_before, line_start) = self.input.line_at(from.at);
        let place = SkeletonPlace {
            placeholders: from.placeholders,
            skeleton_at: self.skeleton.len(),
            body_at: from.at,
            newlines_before,
            line_start,
        };
        let end = self.input.base + self.input.buf.len();
        self.skeleton
            .extend_from_slice(self.input.held(from.at, end));
        // Only as much of the rest as shows where the body goes wrong: a client that sends
        // a broken start and stalls is refused then, not at its deadline. Tried again as the
        // copy doubles, so a long rest is read a few times, not once per chunk.
        let mut try_at = 0;
        loop {
            if self.skeleton.len() >= try_at {
                match serde_json::from_slice::<IgnoredAny>(&self.skeleton) {
                    // Not yet all of a byte order mark, which is refused by name.
                    Err(_)
                        if self.skeleton.len() < read::UTF8_BOM.len()
                            && read::UTF8_BOM.starts_with(&self.skeleton) => {}
                    Err(error) if !error.is_eof() => break,
                    _ => try_at = self.skeleton.len().saturating_mul(2).max(1),
                }
            }
            match self.input.chunks.next() {
                Some(chunk) => self.skeleton.extend_from_slice(&chunk),
                None => break,
            }
        }
        place
    }
}

/// The body as it arrives: the bytes from `mark` on are held, earlier ones dropped.
struct Input<I> {
    chunks: I,
    buf: Vec<u8>,
    /// The body offset of `buf[0]`.
    base: usize,
    /// The body offset of the next byte to read.
    pos: usize,
    /// The earliest body offset still needed (a copy may start there).
    mark: usize,
    ended: bool,
    /// Newlines in the dropped bytes, and the body offset where the line after the last
    /// of them begins.
    newlines: usize,
    line_start: usize,
}

/// One try at reading a value from the bytes at hand.
enum Attempt<T> {
    /// The value, and the bytes it took.
    Done(T, usize),
    /// The bytes end inside the value.
    More,
    /// Not a value; the skeleton read says why.
    Bad,
}

/// Reads one `T` from the start of `bytes` and keeps what `keep` takes of it.
fn attempt<'b, T: Deserialize<'b>, R>(bytes: &'b [u8], keep: impl FnOnce(T) -> R) -> Attempt<R> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    match values.next() {
        Some(Ok(value)) => Attempt::Done(keep(value), values.byte_offset()),
        Some(Err(error)) if error.is_eof() => Attempt::More,
        Some(Err(_)) => Attempt::Bad,
        None => Attempt::More,
    }
}

impl<I: Iterator<Item = Bytes>> Input<I> {
    fn new(chunks: I) -> Self {
        Input {
            chunks,
            buf: Vec::new(),
            base: 0,
            pos: 0,
            mark: 0,
            ended: false,
            newlines: 0,
            line_start: 0,
        }
    }

    /// Takes the next chunk, first dropping what is no longer needed; false at the end.
    fn fill(&mut self) -> bool {
        if self.ended {
            return false;
        }
        let drop_to = self.mark.min(self.pos) - self.base;
        if drop_to > 0 {
            let dropped = &self.buf[..drop_to];
            if let Some(last) = memchr::memrchr(b'\n', dropped) {
                self.newlines += memchr::memchr_iter(b'\n', dropped).count();
                self.line_start = self.base + last + 1;
            }
            self.buf.drain(..drop_to);
            self.base += drop_to;
        }
        match self.chunks.next() {
            Some(chunk) => {
                self.buf.extend_from_slice(&chunk);
                true
            }
            None => {
                self.ended = true;
                false
            }
        }
    }

    /// The next byte that is not whitespace, skipping to it; `None` at the end of the body.
    fn peek(&mut self) -> Option<u8> {
        loop {
            while let Some(&byte) = self.buf.get(self.pos - self.base) {
                if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                    return Some(byte);
                }
                self.pos += 1;
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn advance(&mut self, bytes: usize) {
        self.pos += bytes;
    }

    /// The held bytes from `start` to `end` (body offsets).
    fn held(&self, start: usize, end: usize) -> &[u8] {
        &self.buf[start - self.base..end - self.base]
    }

    /// Newlines before `at` (a held body offset) and where its line begins.
    fn line_at(&self, at: usize) -> (usize, usize) {
        let before = &self.buf[..at - self.base];
        let newlines = self.newlines + memchr::memchr_iter(b'\n', before).count();
        let line_start =
            memchr::memrchr(b'\n', before).map_or(self.line_start, |last| self.base + last + 1);
        (newlines, line_start)
    }

    /// Reads the value at `pos` once its bytes are here; `None` when it is not one. A value
    /// cut by the end of a chunk is tried again only once the bytes at hand have doubled,
    /// so a large item sent in small chunks is read a few times, not once per chunk.
    fn parse<T>(&mut self, mut read: impl FnMut(&[u8]) -> Attempt<T>) -> Option<T> {
        self.mark = self.mark.min(self.pos);
        let mut try_at = 0usize;
        loop {
            let at_hand = self.buf.len() - (self.pos - self.base);
            if at_hand >= try_at || self.ended {
                match read(&self.buf[self.pos - self.base..]) {
                    // A value that ends with the bytes at hand may go on (a number): it is
                    // whole only once a byte after it, or the end of the body, is here.
                    Attempt::Done(value, used) if used < at_hand || self.ended => {
                        self.pos += used;
                        return Some(value);
                    }
                    Attempt::Bad => return None,
                    _ if self.ended => return None,
                    _ => {}
                }
                try_at = at_hand.saturating_mul(2).max(at_hand + 1);
            }
            self.fill();
        }
    }
}

/// An item read with its keys raw, made owned.
struct RawItem(Item<'static>);

impl<'de> Deserialize<'de> for RawItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ItemSeed(KeyReading::Raw)
            .deserialize(deserializer)
            .map(|item| RawItem(item.into_owned()))
    }
}

/// An item read with its keys as text, made owned.
struct CheckedItem(Item<'static>);

impl<'de> Deserialize<'de> for CheckedItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ItemSeed(KeyReading::Checked)
            .deserialize(deserializer)
            .map(|item| CheckedItem(item.into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threatq::read_batch;
    use proptest::prelude::*;

    type Read = Result<(Vec<Item<'static>>, BodyOverrides), ReadError>;

    fn streamed(body: &[u8], chunk: usize, objects_per_run: usize) -> Read {
        let chunks = body.chunks(chunk.max(1)).map(Bytes::copy_from_slice);
        read_streamed(chunks, objects_per_run, chunk.is_multiple_of(2), Vec::new)
    }

    fn whole(body: &[u8], objects_per_run: usize) -> Read {
        read_batch(body, objects_per_run, Vec::new).map(|(items, overrides)| {
            (items.into_iter().map(Item::into_owned).collect(), overrides)
        })
    }

    /// Every form, overrides and ThreatQ's keys, escapes, items of every shape, lines.
    const BODIES: &[&str] = &[
        r#"[]"#,
        "  [ ]  \n",
        r#"[{"type": "FQDN", "value": "a.example"}, "x", 5, null, {"value": "b.example", "type": {"name": "FQDN"}}]"#,
        r#"{"total": 2, "data": [{"value": "a.example"},
            {"value": "b\u002eexample", "status": {"name": "Active"}, "attributes": [{"name": "n", "value": "]}"}]}],
            "nextCursorMark": "x", "dry_run": true, "source": "S"}"#,
        r#"{"source": "S", "indicators": [{"value": "c.example"}], "days_to_expiration": 3}"#,
        r#"{"indicators": []}"#,
        "[{\"note\\u0001\": 1, \"value\": \"d.example\"}]",
        r#"[1, 2.5e3, -0, true, false, [1, [2]], {"a": {"b": []}}]"#,
        r#"{"d\u0061ta": [{"value": "escaped.key.example"}]}"#,
        r#"{"data": {}, "limit": 10, "nextCursorMark": "AoJ0", "total": 0}"#,
        r#"{"data": { }, "source": "S"}"#,
    ];

    /// Bodies refused, each somewhere else.
    const REFUSED: &[&str] = &[
        "",
        "   \n ",
        "5",
        r#""a string""#,
        "nul",
        r#"[{"value": }"#,
        "[{\"a\": 1}\n  {\"b\": 2}]",
        r#"[{"a": 1},]"#,
        r#"[{"a": 1}, ]"#,
        r#"[1 2]"#,
        r#"[1,2,3]]"#,
        "[1,2,3]\n  x",
        r#"{"data": [1], "indicators": [2]}"#,
        r#"{"data": [], "data": []}"#,
        r#"{"data": 5}"#,
        r#"{"data": {"value": "a.example"}}"#,
        r#"{"indicators": [], "dry_run": "yes"}"#,
        r#"{"indicators": [], "dryrun": true}"#,
        r#"{"data": [], "Source": "x"}"#,
        r#"{"total": 0}"#,
        r#"{"data": [1,2,3] "x": 1}"#,
        r#"{"a": 1,}"#,
        r#"{"a" 1}"#,
        r#"{"a": 1 "b": 2}"#,
        r#"{5: 1}"#,
        r#"{"data": [1, 2"#,
        r#"{"data": [{"value": "a.example", "score": {"manual_score": [1]}}]}"#,
        "[{\"value\": \"raw\u{1}control\"}]",
        "[{\"ke\u{1}y\": 1}]",
        "[1,\n2,\n  {\"value\": \"x\",\n   \"type\": tru}]",
        r#"{"data": [{"a": [1, 2}]}"#,
        "\u{feff}[{\"value\": \"a.example\"}]",
        "\u{feff}",
    ];

    #[test]
    fn every_body_is_read_as_a_whole_body_is_in_chunks_of_any_size() {
        for body in BODIES.iter().chain(REFUSED) {
            let want = whole(body.as_bytes(), 100);
            for chunk in [1, 2, 3, 7, 16, 64, 4096] {
                assert_eq!(
                    streamed(body.as_bytes(), chunk, 100),
                    want,
                    "{body:?} in chunks of {chunk}"
                );
            }
        }
    }

    /// Each item is read on its own, two levels shallower than in a whole body: around
    /// serde_json's depth limit (128) the two must still agree, in every field the item reads.
    #[test]
    fn an_item_nested_past_the_depth_limit_is_read_as_in_a_whole_body() {
        for depth in [126, 127, 128, 129, 130, 5000] {
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            for field in ["x", "value", "score", "expires_at", "id"] {
                let item = format!(r#"{{"{field}": {nested}, "type": {{"name": {nested}}}}}"#);
                for body in [format!("[{item}]"), format!(r#"{{"data": [{item}]}}"#)] {
                    let want = whole(body.as_bytes(), 100);
                    for chunk in [1, 7, 4096] {
                        assert_eq!(
                            streamed(body.as_bytes(), chunk, 100),
                            want,
                            "{field} nested {depth} deep, in chunks of {chunk}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_body_cut_anywhere_is_refused_where_a_whole_body_is() {
        for body in BODIES {
            for end in 0..body.len() {
                let Some(cut) = body.get(..end) else { continue };
                let want = whole(cut.as_bytes(), 100);
                assert_eq!(streamed(cut.as_bytes(), 5, 100), want, "{cut:?}");
            }
        }
    }

    #[test]
    fn items_past_objects_per_run_are_counted_and_refused_as_whole_bodies_are() {
        for body in [
            r#"[1, 2, 3, 4, 5]"#,
            r#"{"data": [{"value": "a"}, {"value": "b"}, {"value": "c"}], "total": 3}"#,
            r#"[1, 2, 3, {"value": }]"#,
            r#"[1, {"value": }, 3]"#,
            r#"[1, 2, 3, 4, 5"#,
        ] {
            for max in [0, 1, 2, 3, 10] {
                let want = whole(body.as_bytes(), max);
                for chunk in [1, 4, 100] {
                    assert_eq!(
                        streamed(body.as_bytes(), chunk, max),
                        want,
                        "{body} max {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_bytes_read_are_dropped_as_the_items_are_taken() {
        // A 4 MiB list read in 64 KiB chunks holds little more than a chunk at a time.
        let item = r#"{"type": "FQDN", "value": "host.example", "attributes": [{"name": "n", "value": "v"}]}"#;
        let body = format!("[{}]", vec![item; 4 * 1024 * 1024 / item.len()].join(","));
        let mut input = Input::new(
            body.as_bytes()
                .chunks(64 * 1024)
                .map(Bytes::copy_from_slice)
                .collect::<Vec<_>>()
                .into_iter(),
        );
        let mut most = 0;
        assert_eq!(input.peek(), Some(b'['));
        input.advance(1);
        loop {
            input.mark = input.pos;
            match input.peek() {
                Some(b',') => input.advance(1),
                Some(b']') => break,
                _ => {}
            }
            input
                .parse(|bytes| attempt::<IgnoredAny, _>(bytes, drop))
                .expect("an item");
            most = most.max(input.buf.len());
        }
        assert!(most <= 2 * 64 * 1024, "held {most} bytes at most");
    }

    fn item() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#"{"type": "FQDN", "value": "a.example"}"#.to_owned()),
            Just(
                r#"{"type": {"name": "IP Address"}, "value": "198.51.100.7", "status": "Active"}"#
                    .to_owned()
            ),
            Just(r#""not an object""#.to_owned()),
            Just("12345".to_owned()),
            Just("{\"value\": \"line\\nbreak\", \"n\": [1, {\"m\": null}]}".to_owned()),
        ]
    }

    proptest! {
        /// Any list of items, in any form, cut into chunks of any size, possibly cut short or
        /// broken by a byte: read as a whole body is.
        #[test]
        fn any_body_in_any_chunks_reads_as_a_whole_body(
            items in prop::collection::vec(item(), 0..12),
            form in 0..3usize,
            chunk in 1..300usize,
            damage in prop::option::of((any::<prop::sample::Index>(), prop_oneof![Just(None), Just(Some(b'x')), Just(Some(b',')), Just(Some(b']')), Just(Some(b'"'))])),
            max in 0..15usize,
        ) {
            let list = format!("[{}]", items.join(",\n "));
            let mut body = match form {
                0 => list,
                1 => format!(r#"{{"total": {}, "data": {list}, "dry_run": true}}"#, items.len()),
                _ => format!(r#"{{"source": "S", "indicators": {list}}}"#),
            }
            .into_bytes();
            if let Some((at, byte)) = damage {
                let at = at.index(body.len());
                match byte {
                    None => body.truncate(at),
                    Some(byte) => body[at] = byte,
                }
            }
            prop_assert_eq!(streamed(&body, chunk, max), whole(&body, max));
        }
    }
}
