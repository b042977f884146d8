//! Frames: one `GenericCommand` per WebSocket message, binary (`lc.protobuf2.3`) or base64 text
//! (`lc.proto2base64.3`).

use base64::Engine as _;
use bytes::Bytes;
use prost::Message as _;

use super::proto::GenericCommand;

/// The wire format a connection negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Binary,
    Base64,
}

/// Subprotocols served, in preference order, with their format.
pub const SUBPROTOCOLS: [(&str, Format); 2] = [("lc.protobuf2.3", Format::Binary), ("lc.proto2base64.3", Format::Base64)];

pub fn format_of(protocol: &str) -> Option<Format> {
    SUBPROTOCOLS.iter().find(|(p, _)| *p == protocol).map(|(_, f)| *f)
}

pub fn encode(cmd: &GenericCommand) -> Bytes {
    Bytes::from(cmd.encode_to_vec())
}

/// Decode a binary frame.
pub fn decode(bytes: &[u8]) -> Result<GenericCommand, prost::DecodeError> {
    GenericCommand::decode(bytes)
}

/// Decode a text frame: base64 of the protobuf. (Clients decode any text frame this way, so
/// servers may send either; confab answers in the negotiated format.)
pub fn decode_text(text: &str) -> Option<GenericCommand> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    decode(&bytes).ok()
}

pub fn to_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `peerId` field (4) encoded on its own. Protobuf fields may come in any order and appear
/// once, so appending this to a push encoded without `peerId` addresses it to one client
/// without encoding the push again.
pub fn peer_id_field(peer: &str) -> Vec<u8> {
    GenericCommand { peer_id: Some(peer.to_string()), ..Default::default() }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::proto::{CommandType, DirectCommand};

    #[test]
    fn appended_peer_id_decodes_as_the_field() {
        let cmd = GenericCommand {
            cmd: Some(CommandType::Direct as i32),
            service: Some(2),
            direct_message: Some(DirectCommand { cid: Some("1".into()), msg: Some("hi".into()), ..Default::default() }),
            ..Default::default()
        };
        let mut bytes = encode(&cmd).to_vec();
        bytes.extend(peer_id_field("bob"));
        let back = decode(&bytes).unwrap();
        assert_eq!(back.peer_id.as_deref(), Some("bob"));
        assert_eq!(back.direct_message, cmd.direct_message);
    }

    #[test]
    fn text_frames_are_base64() {
        let cmd = GenericCommand { cmd: Some(CommandType::Echo as i32), i: Some(7), ..Default::default() };
        let text = to_text(&encode(&cmd));
        assert_eq!(decode_text(&text), Some(cmd));
        assert_eq!(decode_text("not base64 !!"), None);
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
