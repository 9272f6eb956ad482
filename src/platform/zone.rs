//! Time zones for cron schedules from the JavaScript runtime's Intl API, which knows every IANA
//! zone and its daylight-saving rules, so the wasm carries no time-zone database.

use crate::domain::error::{ApiError, Code};
use crate::domain::schedule::Zone;
use crate::domain::time::days_from_civil;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Array, Function, Object, Reflect};

/// One zone's formatter. Every call goes through `Reflect`, which turns a JavaScript exception
/// (an unknown zone name throws a RangeError) into an error instead of a trap.
pub struct IntlZone {
    formatter: JsValue,
    format_to_parts: Function,
}

/// Zones kept per isolate; past that a zone is built for each use.
const MAX_CACHED_ZONES: usize = 64;

thread_local! {
    /// Building a formatter costs far more than using one; a zone is built once per isolate.
    static ZONES: RefCell<HashMap<String, Rc<IntlZone>>> = RefCell::new(HashMap::new());
}

impl IntlZone {
    /// The zone named `tz` (such as `Europe/Berlin`), or a 400 that says what a zone name is.
    pub fn named(tz: &str) -> Result<Rc<IntlZone>, ApiError> {
        if let Some(z) = ZONES.with(|z| z.borrow().get(tz).cloned()) {
            return Ok(z);
        }
        let zone = Rc::new(Self::build(tz).ok_or_else(|| {
            ApiError::new(
                Code::InvalidBody,
                format!("unknown time zone {tz:?}: use an IANA name such as Europe/Berlin or UTC"),
            )
        })?);
        // Bounded: zone names come from requests, and every spelling Intl accepts is a new key.
        ZONES.with(|z| {
            let mut z = z.borrow_mut();
            if z.len() < MAX_CACHED_ZONES {
                z.insert(tz.to_string(), zone.clone());
            }
        });
        Ok(zone)
    }

    fn build(tz: &str) -> Option<IntlZone> {
        let intl = Reflect::get(&js_sys::global(), &"Intl".into()).ok()?;
        let ctor: Function = Reflect::get(&intl, &"DateTimeFormat".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let options = Object::new();
        for (k, v) in [
            ("timeZone", tz),
            ("hourCycle", "h23"),
            ("year", "numeric"),
            ("month", "numeric"),
            ("day", "numeric"),
            ("hour", "numeric"),
            ("minute", "numeric"),
            ("second", "numeric"),
        ] {
            Reflect::set(&options, &k.into(), &v.into()).ok()?;
        }
        let formatter = Reflect::construct(&ctor, &Array::of2(&"en-US".into(), &options)).ok()?;
        let format_to_parts: Function = Reflect::get(&formatter, &"formatToParts".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let zone = IntlZone {
            formatter,
            format_to_parts,
        };
        // A zone that cannot format now is no use later either.
        zone.offset(0).map(|_| zone)
    }

    /// Seconds east of UTC at the instant `utc`: the local wall time read as if it were UTC,
    /// minus the instant.
    fn offset(&self, utc: i64) -> Option<i64> {
        let date = js_sys::Date::new(&JsValue::from_f64(utc as f64 * 1000.0));
        let parts: Array =
            Reflect::apply(&self.format_to_parts, &self.formatter, &Array::of1(&date))
                .ok()?
                .dyn_into()
                .ok()?;
        // year, month, day, hour, minute, second
        let mut f = [0i64; 6];
        for part in parts.iter() {
            let slot = match Reflect::get(&part, &"type".into())
                .ok()?
                .as_string()?
                .as_str()
            {
                "year" => 0,
                "month" => 1,
                "day" => 2,
                "hour" => 3,
                "minute" => 4,
                "second" => 5,
                _ => continue,
            };
            f[slot] = Reflect::get(&part, &"value".into())
                .ok()?
                .as_string()?
                .parse()
                .ok()?;
        }
        let local = days_from_civil(f[0], f[1] as u32, f[2] as u32) * 86_400
            + f[3] * 3600
            + f[4] * 60
            + f[5];
        Some(local - utc)
    }
}

impl Zone for IntlZone {
    fn offset_at(&self, utc: i64) -> i64 {
        self.offset(utc).unwrap_or_else(|| {
            worker::console_error!("time zone: Intl could not format {utc}; judging in UTC");
            0
        })
    }
}
