//! What an approved template needs at send time besides its body variables: a header
//! variable or a header file, and the suffix of each URL button whose address ends in a
//! variable. Meta refuses a send that leaves one out (132000 for a header text variable,
//! 132012 for a media header, 131008 for a URL button), so the editor stores the chosen
//! template's shape with the step and the engine sends what it names.

use serde::{Deserialize, Serialize};

/// At most this many URL buttons in a template, so at most this many button variables
/// (`button1`, `button2`).
// Unconfirmed: Meta's limit of two URL buttons per template (from integrators' docs, not
// reference/).
pub const MAX_URL_BUTTONS: usize = 2;

/// The step parameter holding the chosen template's shape (see [`Shape`]).
pub const SHAPE: &str = "shape";
/// The step parameter with the header's `{{1}}` (a text header takes at most one variable).
pub const HEADER_PARAM: &str = "header_param";
/// The step parameter with the https link of a media header's file.
pub const HEADER_MEDIA: &str = "header_media";

/// The step parameter of the `n`-th (1-based) URL button's variable.
pub fn button_param(n: usize) -> String {
    format!("button{n}")
}

/// What a template's header needs when it is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderNeed {
    /// No header, or one sent as approved (text without a variable).
    #[default]
    None,
    /// A text header with a `{{1}}`.
    Text,
    /// A media header: the file's link is given at send time.
    Image,
    Document,
    Video,
}

impl HeaderNeed {
    /// A listed header's `format` (`TEXT`, `IMAGE`, …) and text.
    pub(crate) fn of_listed(format: &str, text: &str) -> Self {
        match format.to_ascii_uppercase().as_str() {
            "TEXT" if !super::placeholders(text).is_empty() => Self::Text,
            "IMAGE" => Self::Image,
            "DOCUMENT" => Self::Document,
            "VIDEO" => Self::Video,
            // LOCATION headers (a place given at send time) are sent as approved, which Meta
            // refuses; no shop notification needs one.
            // Unconfirmed: how 1msg takes a location header's parameter.
            _ => Self::None,
        }
    }

    /// The Cloud API parameter type of a media header (`image`, …); `None` for the others.
    pub fn media_type(self) -> Option<&'static str> {
        match self {
            Self::Image => Some("image"),
            Self::Document => Some("document"),
            Self::Video => Some("video"),
            Self::None | Self::Text => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Text => "text",
            Self::Image => "image",
            Self::Document => "document",
            Self::Video => "video",
        }
    }

    fn parse(s: &str) -> Self {
        match s.trim() {
            "text" => Self::Text,
            "image" => Self::Image,
            "document" => Self::Document,
            "video" => Self::Video,
            _ => Self::None,
        }
    }
}

/// A template's needs beyond the body, as a step stores them: `image;1` is a media header
/// with an image and one URL button with a variable, at index 1 among the template's buttons
/// (Meta numbers all buttons, quick replies too). Empty or absent: nothing beyond the body
/// (steps saved before headers and buttons were filled read so).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub header: HeaderNeed,
    /// The index among all buttons of each URL button with a variable, in order.
    pub url_buttons: Vec<usize>,
}

impl Shape {
    /// Reads a stored shape; anything unreadable counts as nothing.
    pub fn parse(s: &str) -> Self {
        let (header, buttons) = s.split_once(';').unwrap_or((s, ""));
        Self {
            header: HeaderNeed::parse(header),
            url_buttons: buttons
                .split(',')
                .filter_map(|b| b.trim().parse().ok())
                .take(MAX_URL_BUTTONS)
                .collect(),
        }
    }

    /// The stored form (no `|`, which separates the editor's template choice).
    pub fn to_stored(&self) -> String {
        if *self == Self::default() {
            return String::new();
        }
        let buttons: Vec<String> = self.url_buttons.iter().map(usize::to_string).collect();
        format!("{};{}", self.header.as_str(), buttons.join(","))
    }

    /// Whether the step parameter `key` must be mapped for this template.
    pub fn requires(&self, key: &str) -> bool {
        match key {
            HEADER_PARAM => self.header == HeaderNeed::Text,
            HEADER_MEDIA => self.header.media_type().is_some(),
            _ => key
                .strip_prefix("button")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n >= 1 && n <= self.url_buttons.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_reads_back_as_stored() {
        let s = Shape {
            header: HeaderNeed::Image,
            url_buttons: vec![1, 2],
        };
        assert_eq!(s.to_stored(), "image;1,2");
        assert_eq!(Shape::parse(&s.to_stored()), s);
        assert_eq!(
            Shape::parse("text;"),
            Shape {
                header: HeaderNeed::Text,
                url_buttons: vec![],
            }
        );
        assert_eq!(Shape::default().to_stored(), "");
        assert_eq!(Shape::parse(""), Shape::default());
        assert_eq!(Shape::parse("junk;x,9,8,7").url_buttons, vec![9, 8]);
    }

    #[test]
    fn what_a_shape_requires() {
        let s = Shape::parse("video;0");
        assert!(s.requires(HEADER_MEDIA) && s.requires("button1"));
        assert!(!s.requires(HEADER_PARAM) && !s.requires("button2") && !s.requires("param1"));
        assert!(Shape::parse("text;").requires(HEADER_PARAM));
    }
}
