//! Whole-journal reads by `COPY (query) TO STDOUT (FORMAT binary)`: the server sends rows
//! without the per-row messages and portal of a query, and the client reads the columns it
//! asked for straight out of the bytes instead of building a row object per posting.
//!
//! The format (PostgreSQL's "Binary Format" of COPY): an 11-byte signature, a flags word and a
//! header extension; then per row a 16-bit field count and per field a 32-bit length (-1 for
//! null) and that many bytes in the type's binary form (`bigint`: 8 bytes, big-endian;
//! `text`: UTF-8); then a field count of -1. Everything is network byte order.

use futures_util::TryStreamExt;
use sqlx::PgConnection;
use store::{Result, StoreError};

use crate::err;

/// The most room [`binary`] makes before the first byte, whatever the guess.
const ROOM_BYTES_MAX: usize = 64 << 20;

/// What every binary COPY stream begins with.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Runs `copy (<query>) to stdout (format binary)` and returns every byte it sent, in a
/// buffer made with room for `room_bytes` (the caller's guess). The query takes no parameters
/// (COPY has none): callers format integers into it, nothing else.
///
/// Why the guess: a page of the journal's postings is a few megabytes, which a buffer grown
/// from empty reached by a dozen copies of itself, as many bytes copied again as received
/// (about 2 % of a reconciliation's time). A low guess costs one copy; a high one, room never
/// touched.
pub(crate) async fn binary(
    conn: &mut PgConnection,
    query: &str,
    room_bytes: usize,
) -> Result<Vec<u8>> {
    let statement = format!("copy ({query}) to stdout (format binary)");
    let mut stream = conn.copy_out_raw(&statement).await.map_err(err)?;
    let mut out = Vec::with_capacity(room_bytes.min(ROOM_BYTES_MAX));
    while let Some(chunk) = stream.try_next().await.map_err(err)? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A reader over one binary COPY stream, row by row and field by field. Every read checks
/// that the bytes are there and of the expected shape: a malformed stream is an error, never
/// a panic or a misread.
pub(crate) struct Rows<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Fields every row must have.
    fields: i16,
}

impl<'a> Rows<'a> {
    /// Checks the header of `bytes`, whose rows must each have `fields` fields.
    pub(crate) fn new(bytes: &'a [u8], fields: i16) -> Result<Rows<'a>> {
        let mut rows = Rows {
            bytes,
            at: 0,
            fields,
        };
        if rows.take(SIGNATURE.len())? != SIGNATURE {
            return Err(malformed("no COPY signature"));
        }
        let _flags = rows.take(4)?;
        let extension = rows.length()?.ok_or_else(|| malformed("header length"))?;
        rows.take(extension)?;
        Ok(rows)
    }

    /// Moves to the next row: false at the trailer.
    pub(crate) fn next_row(&mut self) -> Result<bool> {
        let n = i16::from_be_bytes(self.array()?);
        if n == -1 {
            return Ok(false);
        }
        if n != self.fields {
            return Err(malformed(&format!(
                "a row of {n} fields where {} were asked for",
                self.fields
            )));
        }
        Ok(true)
    }

    /// The next field, a non-null `bigint`.
    pub(crate) fn int(&mut self) -> Result<i64> {
        self.opt_int()?
            .ok_or_else(|| malformed("null in a not-null column"))
    }

    /// The next field, a `bigint` or null.
    pub(crate) fn opt_int(&mut self) -> Result<Option<i64>> {
        match self.length()? {
            None => Ok(None),
            Some(8) => Ok(Some(i64::from_be_bytes(self.array()?))),
            Some(n) => Err(malformed(&format!("a bigint of {n} bytes"))),
        }
    }

    /// The next field, a non-null `text`.
    pub(crate) fn text(&mut self) -> Result<&'a str> {
        let n = self
            .length()?
            .ok_or_else(|| malformed("null in a not-null column"))?;
        std::str::from_utf8(self.take(n)?).map_err(|_| malformed("text that is not UTF-8"))
    }

    /// A field's length; `None` for null.
    fn length(&mut self) -> Result<Option<usize>> {
        let n = i32::from_be_bytes(self.array()?);
        if n == -1 {
            return Ok(None);
        }
        usize::try_from(n)
            .map(Some)
            .map_err(|_| malformed("a negative length"))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.take(N)?;
        Ok(b.try_into().expect("take returns N bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| malformed("the stream ends inside a row"))?;
        let b = &self.bytes[self.at..end];
        self.at = end;
        Ok(b)
    }
}

fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("unreadable COPY stream: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as the server writes it: header, rows, trailer.
    fn stream(rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        for row in rows {
            b.extend_from_slice(&i16::try_from(row.len()).unwrap().to_be_bytes());
            for f in row {
                match f {
                    None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        b.extend_from_slice(&i32::try_from(v.len()).unwrap().to_be_bytes());
                        b.extend_from_slice(v);
                    }
                }
            }
        }
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b
    }

    #[test]
    fn reads_integers_nulls_and_text_in_order() {
        let seven = 7i64.to_be_bytes();
        let minus = (-42i64).to_be_bytes();
        let b = stream(&[
            vec![Some(&seven[..]), None, Some("库存 A".as_bytes())],
            vec![Some(&minus[..]), Some(&seven[..]), Some(b"")],
        ]);
        let mut rows = Rows::new(&b, 3).unwrap();
        assert!(rows.next_row().unwrap());
        assert_eq!(
            (
                rows.int().unwrap(),
                rows.opt_int().unwrap(),
                rows.text().unwrap()
            ),
            (7, None, "库存 A")
        );
        assert!(rows.next_row().unwrap());
        assert_eq!(
            (
                rows.int().unwrap(),
                rows.opt_int().unwrap(),
                rows.text().unwrap()
            ),
            (-42, Some(7), "")
        );
        assert!(!rows.next_row().unwrap());
    }

    #[test]
    fn refuses_a_malformed_stream_instead_of_misreading_it() {
        let seven = 7i64.to_be_bytes();
        let good = stream(&[vec![Some(&seven[..])]]);
        // Cut inside the row: an error, not a panic.
        let mut rows = Rows::new(&good[..good.len() - 5], 1).unwrap();
        assert!(rows.next_row().unwrap());
        assert!(rows.int().is_err());
        // Another shape than asked for.
        let mut rows = Rows::new(&good, 2).unwrap();
        assert!(rows.next_row().is_err());
        // A null where a value must be, an integer of the wrong width, text that is not UTF-8.
        let null = stream(&[vec![None]]);
        let mut rows = Rows::new(&null, 1).unwrap();
        assert!(rows.next_row().unwrap());
        assert!(rows.int().is_err());
        let narrow = stream(&[vec![Some(&[1, 2][..])]]);
        let mut rows = Rows::new(&narrow, 1).unwrap();
        assert!(rows.next_row().unwrap());
        assert!(rows.opt_int().is_err());
        let latin = stream(&[vec![Some(&[0xff][..])]]);
        let mut rows = Rows::new(&latin, 1).unwrap();
        assert!(rows.next_row().unwrap());
        assert!(rows.text().is_err());
        // Not a COPY stream at all.
        assert!(Rows::new(b"PGCOPY", 1).is_err());
        assert!(Rows::new(b"something else entirely", 1).is_err());
    }
}
