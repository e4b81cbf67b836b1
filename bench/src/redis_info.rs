//! The one thing the bench asks Redis directly: `INFO memory`'s
//! `used_memory`, the bytes Redis's allocator holds for the dataset and
//! its own structures, over a plain TCP connection speaking RESP (one
//! command, one bulk-string answer), so the bench needs no Redis client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `used_memory` of the Redis at `addr` (host:port), in bytes.
///
/// # Errors
/// What went wrong: the connection, the answer's shape, or the field.
pub fn used_memory(addr: &str) -> Result<u64, String> {
    let info = info_memory(addr).map_err(|error| format!("INFO memory at {addr}: {error}"))?;
    field(&info, "used_memory").ok_or_else(|| format!("INFO memory at {addr}: no used_memory"))
}

fn info_memory(addr: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header)?;
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let length: usize = header
        .strip_prefix('$')
        .and_then(|rest| rest.trim_end().parse().ok())
        .ok_or_else(|| invalid(header.trim_end()))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    String::from_utf8(body).map_err(|_| invalid("not UTF-8"))
}

/// The integer value of `name` in an INFO section (`name:value` lines).
fn field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn reads_the_named_field_not_one_it_prefixes() {
        let info = "# Memory\r\nused_memory_rss:900\r\nused_memory:1234\r\nused_memory_peak:5\r\n";
        assert_eq!(field(info, "used_memory"), Some(1234));
        assert_eq!(field(info, "used_memory_rss"), Some(900));
        assert_eq!(field(info, "missing"), None);
    }
}
