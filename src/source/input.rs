//! Opening inputs: a path or `-` for stdin, gzip detected by its magic bytes
//! (so a rotated `maillog.1.gz` and a mis-named file both just work).

use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// Opens `path` (`-` is stdin), transparently decompressing gzip.
pub(crate) fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, File::open(path)?))
    };
    decompress(raw)
}

fn decompress(mut raw: Box<dyn BufRead + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let head = raw.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(raw),
        )))
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::{Read, Write};

    #[test]
    fn gzip_is_detected_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(b"hello\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let mut text = String::new();
        open(&path).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\n");
    }
}
