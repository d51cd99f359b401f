//! Zones in RFC 1035 master-file format: reading them (`load`, on the
//! tokens of `lexer`) and writing them (`write`, the secondary's copy).

pub mod lexer;
pub mod load;
pub mod write;
