//! A widget's look and manners: theme colour, position, pre-chat fields,
//! business hours and the away message. Each value can only be made valid,
//! so what the store keeps and the widget shows has passed these checks.
//!
//! Business hours need no time-zone database: the tenant gives a fixed
//! offset from UTC and one opening window per weekday. A place with
//! daylight saving time updates the offset when its clocks change.

use serde::{Deserialize, Serialize};

/// Why widget settings were refused. The message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("theme_color must be a colour written #rrggbb")]
    BadColor,
    #[error("a time must be written HH:MM, from 00:00 to 24:00")]
    BadTime,
    #[error("utc_offset_minutes must be from -720 to 840")]
    BadOffset,
    #[error("hours.days must list 7 days, Monday first")]
    BadDays,
    #[error("an opening window must close after it opens")]
    EmptyWindow,
    #[error("{field} must be at most {limit} characters")]
    TooLong { field: &'static str, limit: usize },
    #[error("{field} must not contain control or text-direction characters")]
    ControlChar { field: &'static str },
}

/// A colour written `#rrggbb`, kept in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThemeColor(String);

impl ThemeColor {
    pub fn parse(raw: &str) -> Result<Self, SettingsError> {
        let hex = raw.strip_prefix('#').ok_or(SettingsError::BadColor)?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SettingsError::BadColor);
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ThemeColor {
    type Error = SettingsError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ThemeColor> for String {
    fn from(color: ThemeColor) -> Self {
        color.0
    }
}

/// Which bottom corner of the host page the launcher sits in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Left,
    #[default]
    Right,
}

/// Whether the pre-chat form asks for a field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldRule {
    #[default]
    Off,
    Optional,
    Required,
}

/// The fields a visitor fills in before the first message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreChat {
    pub name: FieldRule,
    pub email: FieldRule,
}

/// A time of day as minutes after midnight, written `HH:MM`; `24:00` is the
/// end of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime(u16);

impl ClockTime {
    pub fn parse(raw: &str) -> Result<Self, SettingsError> {
        let (h, m) = raw.split_once(':').ok_or(SettingsError::BadTime)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(SettingsError::BadTime);
        }
        let hours: u16 = h.parse().map_err(|_| SettingsError::BadTime)?;
        let minutes: u16 = m.parse().map_err(|_| SettingsError::BadTime)?;
        let total = hours * 60 + minutes;
        if minutes > 59 || total > 24 * 60 {
            return Err(SettingsError::BadTime);
        }
        Ok(Self(total))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl TryFrom<String> for ClockTime {
    type Error = SettingsError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ClockTime> for String {
    fn from(time: ClockTime) -> Self {
        format!("{:02}:{:02}", time.0 / 60, time.0 % 60)
    }
}

/// One day's opening window: open from `open` until just before `close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub open: ClockTime,
    pub close: ClockTime,
}

/// When someone is there to answer: a fixed UTC offset and, for each day
/// from Monday to Sunday, one window or `null` for closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub utc_offset_minutes: i32,
    pub days: Vec<Option<Window>>,
}

impl BusinessHours {
    fn check(&self) -> Result<(), SettingsError> {
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(SettingsError::BadOffset);
        }
        if self.days.len() != 7 {
            return Err(SettingsError::BadDays);
        }
        if self.days.iter().flatten().any(|w| w.close <= w.open) {
            return Err(SettingsError::EmptyWindow);
        }
        Ok(())
    }

    /// Whether `at` (Unix milliseconds) falls in an opening window.
    pub fn is_open_at(&self, at: i64) -> bool {
        let local_minutes = at.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        let day = local_minutes.div_euclid(24 * 60);
        let minute = local_minutes.rem_euclid(24 * 60);
        // 1970-01-01 was a Thursday: day 0 is index 3 of a Monday-first week.
        let weekday = usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0);
        match self.days.get(weekday).copied().flatten() {
            Some(w) => {
                i64::from(w.open.minutes()) <= minute && minute < i64::from(w.close.minutes())
            }
            None => false,
        }
    }
}

/// Everything about a widget a tenant admin can change but its greeting
/// (kept with the widget itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    pub theme_color: ThemeColor,
    #[serde(default)]
    pub position: Position,
    #[serde(default)]
    pub prechat: PreChat,
    /// `None`: always open.
    #[serde(default)]
    pub hours: Option<BusinessHours>,
    pub away_message: String,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            theme_color: ThemeColor("#2457c5".to_owned()),
            position: Position::Right,
            prechat: PreChat::default(),
            hours: None,
            away_message: "We're away right now. Leave your email and we'll reply as soon as \
                           we're back."
                .to_owned(),
        }
    }
}

impl WidgetSettings {
    pub const MAX_AWAY_CHARS: usize = 500;

    /// Checks what the field types alone cannot: the hours and the away
    /// message.
    pub fn check(&self) -> Result<(), SettingsError> {
        if let Some(hours) = &self.hours {
            hours.check()?;
        }
        check_text("away_message", &self.away_message, Self::MAX_AWAY_CHARS)
    }

    /// Whether visitors find someone there at `at` (Unix milliseconds).
    pub fn is_open_at(&self, at: i64) -> bool {
        self.hours.as_ref().is_none_or(|hours| hours.is_open_at(at))
    }
}

/// A widget greeting or away message: at most `limit` characters, newlines
/// allowed, no other control or text-direction characters.
pub fn check_text(field: &'static str, text: &str, limit: usize) -> Result<(), SettingsError> {
    if text.chars().count() > limit {
        return Err(SettingsError::TooLong { field, limit });
    }
    let bad = |c: char| (c.is_control() && c != '\n') || crate::input::is_bidi_control(c);
    if text.chars().any(bad) {
        return Err(SettingsError::ControlChar { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays_nine_to_five(offset: i32) -> BusinessHours {
        let window = Window {
            open: ClockTime::parse("09:00").expect("valid"),
            close: ClockTime::parse("17:00").expect("valid"),
        };
        let mut days = vec![Some(window); 5];
        days.extend([None, None]);
        BusinessHours {
            utc_offset_minutes: offset,
            days,
        }
    }

    // 2026-12-04 is a Friday; this is 12:00 UTC.
    const FRIDAY_NOON_UTC: i64 = 1_796_385_600_000;

    #[test]
    fn colours_must_be_six_hex_digits() {
        assert_eq!(
            ThemeColor::parse("#A0b1C2").expect("valid").as_str(),
            "#a0b1c2"
        );
        for bad in ["a0b1c2", "#abc", "#a0b1c2d", "#ggg000", "", "#a0b1c2;x"] {
            assert_eq!(
                ThemeColor::parse(bad),
                Err(SettingsError::BadColor),
                "{bad}"
            );
        }
    }

    #[test]
    fn times_are_hh_mm_up_to_midnight() {
        assert_eq!(ClockTime::parse("00:00").expect("valid").minutes(), 0);
        assert_eq!(ClockTime::parse("24:00").expect("valid").minutes(), 1440);
        for bad in ["9:00", "24:01", "12:60", "12-00", "ab:cd", "+1:00"] {
            assert_eq!(ClockTime::parse(bad), Err(SettingsError::BadTime), "{bad}");
        }
    }

    #[test]
    fn open_hours_follow_the_offset_and_weekday() {
        let utc = weekdays_nine_to_five(0);
        assert!(utc.is_open_at(FRIDAY_NOON_UTC));
        // 12:00 UTC is 21:00 at +09:00: closed.
        assert!(!weekdays_nine_to_five(540).is_open_at(FRIDAY_NOON_UTC));
        // 12:00 UTC is 04:00 at -08:00: closed.
        assert!(!weekdays_nine_to_five(-480).is_open_at(FRIDAY_NOON_UTC));
        // A day later is Saturday: closed all day.
        assert!(!utc.is_open_at(FRIDAY_NOON_UTC + 86_400_000));
        // The window closes at 17:00 sharp.
        let five_pm = FRIDAY_NOON_UTC + 5 * 3_600_000;
        assert!(utc.is_open_at(five_pm - 60_000));
        assert!(!utc.is_open_at(five_pm));
    }

    #[test]
    fn settings_refuse_bad_hours_and_text() {
        let mut settings = WidgetSettings {
            hours: Some(weekdays_nine_to_five(0)),
            ..WidgetSettings::default()
        };
        assert_eq!(settings.check(), Ok(()));
        settings.hours.as_mut().expect("valid").days.pop();
        assert_eq!(settings.check(), Err(SettingsError::BadDays));
        settings.hours = Some(weekdays_nine_to_five(900));
        assert_eq!(settings.check(), Err(SettingsError::BadOffset));
        settings.hours = None;
        settings.away_message = "x".repeat(501);
        assert!(matches!(
            settings.check(),
            Err(SettingsError::TooLong { .. })
        ));
        settings.away_message = "bell\u{7}".into();
        assert!(matches!(
            settings.check(),
            Err(SettingsError::ControlChar { .. })
        ));
        settings.away_message = "back \u{202e}noos".into();
        assert!(matches!(
            settings.check(),
            Err(SettingsError::ControlChar { .. })
        ));
        assert!(matches!(
            check_text("greeting", "hi \u{61c}there", 200),
            Err(SettingsError::ControlChar { .. })
        ));
        assert!(check_text("greeting", "Hi!\nHow can we help?", 200).is_ok());
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        let bad = [
            r##"{"theme_color":"#112233","away_message":"","extra":1}"##,
            r##"{"theme_color":"#112233","away_message":"","position":"top"}"##,
            r##"{"theme_color":"red","away_message":""}"##,
            r##"{"theme_color":"#112233","away_message":"","prechat":{"name":"maybe"}}"##,
        ];
        for raw in bad {
            assert!(
                serde_json::from_str::<WidgetSettings>(raw).is_err(),
                "{raw}"
            );
        }
        let ok = r##"{"theme_color":"#112233","away_message":"back soon",
            "hours":{"utc_offset_minutes":60,"days":[{"open":"09:00","close":"17:30"},
            null,null,null,null,null,null]}}"##;
        let settings: WidgetSettings = serde_json::from_str(ok).expect("valid");
        let round = serde_json::to_value(&settings).expect("valid");
        assert_eq!(round["hours"]["days"][0]["close"], "17:30");
        assert_eq!(round["position"], "right");
    }
}
