//! Randomness from the operating system, for serial numbers, the CA's name and temporary
//! file names. Nothing here may fall back to a weaker source when the system one fails.

use rcgen::SerialNumber;

use crate::PkiError;

/// Length of a certificate serial number: 128 bits, well under the 20 bytes RFC 5280 allows.
const SERIAL_LEN: usize = 16;

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> Result<[u8; N], PkiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(PkiError::Random)?;
    Ok(buf)
}

/// `N` random bytes as lower-case hex.
pub(crate) fn hex<const N: usize>() -> Result<String, PkiError> {
    Ok(bytes::<N>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random, positive serial number of fixed length.
pub(crate) fn serial() -> Result<SerialNumber, PkiError> {
    let mut serial = bytes::<SERIAL_LEN>()?;
    // A clear top bit keeps the number positive; a set next bit keeps it from being shortened
    // or zero.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&serial))
}
