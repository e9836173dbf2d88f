//! Small valid files the simulator hosts when a simulated user sends media without giving its
//! bytes: Meta's webhooks always carry an id, a MIME type and a SHA-256 of a real file.

pub struct Sample {
    pub mime_type: &'static str,
    pub bytes: &'static [u8],
}

/// The message types that carry media.
pub const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// A 16×16 JPEG, a 0.5 s MP4 (H.264 + AAC), a 0.5 s Ogg Opus voice note, a one-page PDF and a
/// 64×64 WebP sticker.
pub fn for_type(message_type: &str) -> Sample {
    match message_type {
        "video" => Sample {
            mime_type: "video/mp4",
            bytes: include_bytes!("../samples/video.mp4"),
        },
        "audio" => Sample {
            mime_type: "audio/ogg; codecs=opus",
            bytes: include_bytes!("../samples/audio.ogg"),
        },
        "document" => Sample {
            mime_type: "application/pdf",
            bytes: include_bytes!("../samples/document.pdf"),
        },
        "sticker" => Sample {
            mime_type: "image/webp",
            bytes: include_bytes!("../samples/sticker.webp"),
        },
        _ => Sample {
            mime_type: "image/jpeg",
            bytes: include_bytes!("../samples/image.jpg"),
        },
    }
}
