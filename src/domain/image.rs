//! What an image URL asks for (`/img/{chart}.svg`, `/badge/{chart}.svg`): its query parameters
//! parsed once into sizes, a range clamped to the retention, an aggregate, labels and texts.

use crate::domain::bucket::Agg;
use crate::domain::error::{ApiError, Code};
use crate::domain::names::Labels;
use crate::domain::svg::Theme;
use crate::domain::time::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    pub badge: bool,
    pub labels: Option<Labels>,
    pub agg: Agg,
    pub theme: Theme,
    /// A sparkline: the line alone.
    pub spark: bool,
    pub width: u32,
    pub height: u32,
    /// Seconds back from now, at most the retention: older buckets are gone anyway.
    pub range: i64,
    /// The range as the caller wrote it, for the caption.
    pub range_text: String,
    /// The chart image's title, or the badge's label; `None`: the chart's name.
    pub title: Option<String>,
}

impl ImageRequest {
    /// How long the edge may keep this image: a minute for a badge (a last value) and for short
    /// ranges, else 1/200 of the range (a 7-day chart 50 minutes, a pixel or two of a README-sized
    /// image), at most an hour. A 7-day README image then reaches D1 about 29 times a day, not
    /// once a minute.
    pub fn edge_seconds(&self) -> u32 {
        if self.badge {
            return 60;
        }
        (self.range / 200).clamp(60, 3600) as u32
    }

    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        badge: bool,
        retention_seconds: i64,
    ) -> Result<ImageRequest, ApiError> {
        let mut labels = None;
        let mut agg = None;
        let mut theme = Theme::Light;
        let mut spark = false;
        let (mut width, mut height) = (None, None);
        let mut range_text = "24h".to_string();
        let mut title = None;
        for (k, v) in pairs {
            match k {
                "labels" => labels = Some(Labels::from_query(v)?),
                "agg" => agg = Some(Agg::parse(v)?),
                "theme" => theme = Theme::parse(Some(v)),
                "type" => spark = v == "spark",
                "width" => width = Some(size("width", v, 40, 2000)?),
                "height" => height = Some(size("height", v, 20, 1000)?),
                "range" => range_text = v.to_string(),
                "title" if !badge => title = Some(v.to_string()),
                "label" if badge => title = Some(v.to_string()),
                _ => {}
            }
        }
        let asked = parse_duration(&range_text).ok_or_else(|| {
            ApiError::new(
                Code::InvalidRange,
                "range must be a duration such as 1h, 24h or 7d",
            )
        })?;
        let range = asked.min(retention_seconds.max(1));
        if range < asked {
            // The caption says what is drawn, not what was asked.
            range_text = format!("{}h", range / 3600);
        }
        Ok(ImageRequest {
            badge,
            labels,
            agg: agg.unwrap_or(if badge { Agg::Last } else { Agg::Avg }),
            theme,
            spark,
            width: width.unwrap_or(if spark { 160 } else { 600 }),
            height: height.unwrap_or(if spark { 40 } else { 200 }),
            range,
            range_text,
            title,
        })
    }

    /// The step an image draws `read` buckets of `bucket_seconds` at: every bucket while there are
    /// no more than pixels, else rolled up by the smallest factor that fits the width.
    pub fn step(&self, read: usize, bucket_seconds: u32) -> i64 {
        let factor = read.div_ceil(self.width.max(1) as usize).max(1) as i64;
        i64::from(bucket_seconds.max(1)) * factor
    }

    /// The most buckets an image reads: eight a pixel.
    pub fn most_buckets(&self) -> usize {
        self.width as usize * 8
    }

    /// The bucket range to read for a chart image ending at `now`: whole buckets, oldest first.
    pub fn bucket_range(&self, now: f64, bucket_seconds: u32) -> (i64, i64) {
        let bucket = i64::from(bucket_seconds.max(1));
        let to = now.ceil() as i64;
        ((to - self.range).div_euclid(bucket) * bucket, to)
    }
}

fn size(name: &str, raw: &str, min: u32, max: u32) -> Result<u32, ApiError> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidSize,
                format!("{name} must be from {min} to {max}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ranges_stay_longer_in_the_edge_cache_and_badges_a_minute() {
        let img = |q: &str, badge| {
            ImageRequest::parse(
                q.split('&').filter_map(|p| p.split_once('=')),
                badge,
                30 * 86_400,
            )
            .unwrap()
            .edge_seconds()
        };
        assert_eq!(img("range=7d", false), 3024);
        assert_eq!(img("range=1h", false), 60);
        assert_eq!(img("range=30d", false), 3600);
        assert_eq!(img("range=7d", true), 60);
    }

    const WEEK: i64 = 7 * 86_400;

    fn image(q: &[(&str, &str)]) -> Result<ImageRequest, ApiError> {
        ImageRequest::parse(q.iter().copied(), false, WEEK)
    }

    #[test]
    fn an_image_without_parameters_is_a_600_by_200_average_of_a_day() {
        let i = image(&[]).unwrap();
        assert_eq!((i.width, i.height, i.range), (600, 200, 86_400));
        assert_eq!(i.agg, Agg::Avg);
        assert!(!i.spark && i.title.is_none());
    }

    #[test]
    fn a_badge_shows_the_last_value_and_takes_a_label() {
        let b = ImageRequest::parse([("label", "users online")], true, WEEK).unwrap();
        assert_eq!(b.agg, Agg::Last);
        assert_eq!(b.title.as_deref(), Some("users online"));
    }

    #[test]
    fn a_sparkline_is_small_by_default() {
        let s = image(&[("type", "spark")]).unwrap();
        assert_eq!((s.width, s.height), (160, 40));
    }

    #[test]
    fn sizes_outside_their_bounds_are_refused() {
        assert_eq!(image(&[("width", "5")]).unwrap_err().code, "invalid_size");
        assert_eq!(image(&[("height", "x")]).unwrap_err().code, "invalid_size");
    }

    #[test]
    fn an_absurd_range_is_clamped_to_the_retention_and_cannot_overflow() {
        let i = image(&[("range", "9223372036854775807")]).unwrap();
        assert_eq!(i.range, WEEK);
        assert_eq!(i.range_text, "168h", "the caption says what is drawn");
        let (from, to) = i.bucket_range(1_700_000_000.0, 60);
        assert!(from < to && to - from <= WEEK + 60);
        assert_eq!(
            image(&[("range", "forever")]).unwrap_err().code,
            "invalid_range"
        );
    }

    #[test]
    fn an_image_draws_every_bucket_while_they_fit_its_width_then_rolls_them_up() {
        let i = image(&[("width", "100")]).unwrap();
        assert_eq!(i.step(100, 60), 60);
        assert_eq!(i.step(101, 60), 120);
        assert_eq!(i.step(0, 60), 60);
        assert_eq!(i.most_buckets(), 800);
    }

    #[test]
    fn the_range_read_starts_on_a_whole_bucket() {
        let i = image(&[("range", "1h")]).unwrap();
        let (from, to) = i.bucket_range(1_700_000_030.5, 60);
        assert_eq!(to, 1_700_000_031);
        assert_eq!(from % 60, 0);
        assert!(from <= to - 3600);
    }
}
