//! The 64-byte message text every benchmark message carries: the sender's
//! index, the channel it was sent to, the per-(sender, channel) sequence
//! number, the message's index in its flow-control window and the send
//! timestamp (nanoseconds on the process-local clock), as fixed-width hex,
//! padded with dots to exactly [`TEXT_LEN`] bytes. Receivers decode it to
//! measure latency and check ordering without any lookup.

/// Length of every benchmark text, in bytes.
pub const TEXT_LEN: usize = 64;

/// Set in a channel number when it names a group (the low bits are the
/// group's index); otherwise it is a user's index.
pub const GROUP_BIT: u32 = 1 << 31;

/// What a benchmark message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// Index of the sending user in the scenario.
    pub sender: u32,
    /// The channel: a user index, or [`GROUP_BIT`] | a group index.
    pub chan: u32,
    /// Sequence number per (sender, channel), from 0.
    pub seq: u32,
    /// Index of the message in its flow-control window.
    pub idx: u32,
    /// Send time, nanoseconds since the process-local epoch.
    pub sent_ns: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut Vec<u8>, tag: u8, value: u64, digits: usize) {
    out.push(tag);
    for shift in (0..digits).rev() {
        out.push(HEX[((value >> (shift * 4)) & 0xf) as usize]);
    }
}

fn get_hex(bytes: &[u8], tag: u8, digits: usize) -> Option<(u64, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first != tag || rest.len() < digits {
        return None;
    }
    let mut value = 0u64;
    for &b in &rest[..digits] {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u64::from(digit);
    }
    Some((value, &rest[digits..]))
}

impl Payload {
    /// The text for this payload: exactly [`TEXT_LEN`] ASCII bytes.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(TEXT_LEN);
        put_hex(&mut out, b's', u64::from(self.sender), 8);
        put_hex(&mut out, b'c', u64::from(self.chan), 8);
        put_hex(&mut out, b'q', u64::from(self.seq), 8);
        put_hex(&mut out, b'i', u64::from(self.idx), 8);
        put_hex(&mut out, b't', self.sent_ns, 16);
        out.resize(TEXT_LEN, b'.');
        // Only ASCII was written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads a text written by [`Payload::encode`]; `None` for anything else.
    #[cfg(test)]
    pub fn decode(text: &str) -> Option<Payload> {
        Payload::decode_bytes(text.as_bytes())
    }

    /// Reads the bytes of a text written by [`Payload::encode`]; `None` for
    /// anything else.
    pub fn decode_bytes(bytes: &[u8]) -> Option<Payload> {
        if bytes.len() != TEXT_LEN {
            return None;
        }
        let (sender, rest) = get_hex(bytes, b's', 8)?;
        let (chan, rest) = get_hex(rest, b'c', 8)?;
        let (seq, rest) = get_hex(rest, b'q', 8)?;
        let (idx, rest) = get_hex(rest, b'i', 8)?;
        let (sent_ns, _) = get_hex(rest, b't', 16)?;
        Some(Payload {
            sender: sender as u32,
            chan: chan as u32,
            seq: seq as u32,
            idx: idx as u32,
            sent_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_exactly_64_bytes() {
        let payload = Payload {
            sender: 7,
            chan: GROUP_BIT | 3,
            seq: 0xdead_beef,
            idx: 12,
            sent_ns: u64::MAX - 5,
        };
        let text = payload.encode();
        assert_eq!(text.len(), TEXT_LEN);
        assert_eq!(Payload::decode(&text), Some(payload));
    }

    #[test]
    fn foreign_texts_are_refused() {
        assert_eq!(Payload::decode("hello"), None);
        assert_eq!(Payload::decode(&"x".repeat(TEXT_LEN)), None);
    }
}
