//! Money: the currencies Stripe accepts, amounts in minor units (saturating arithmetic, as
//! amounts come from clients), the minimum charge per currency and amounts as Stripe writes
//! them in messages.

use crate::error::{ApiError, ApiResult};
use crate::form::{Params, param_name};

/// Currencies Stripe accepts (ISO 4217, lower case).
const CURRENCIES: &[&str] = &[
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
    "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
];

/// Currencies without a minor unit (amounts are whole units).
pub const ZERO_DECIMAL_CURRENCIES: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// A `currency` parameter, lower-cased and checked against Stripe's currencies.
pub fn currency(p: &Params, path: &[&str]) -> ApiResult<Option<String>> {
    let Some(value) = p.non_empty(path)? else {
        return Ok(None);
    };
    let lower = value.trim().to_ascii_lowercase();
    if CURRENCIES.contains(&lower.as_str()) {
        Ok(Some(lower))
    } else {
        Err(ApiError::invalid_param(
            &param_name(path),
            format!(
                "Invalid currency: {value}. Stripe currently supports these currencies: {}",
                CURRENCIES.join(", ")
            ),
        ))
    }
}

/// A required `currency` parameter.
pub fn required_currency(p: &Params, path: &[&str]) -> ApiResult<String> {
    currency(p, path)?.ok_or_else(|| ApiError::parameter_missing(&param_name(path)))
}

/// `unit × quantity`, saturating (amounts and quantities come from clients).
pub fn line_amount(unit: i64, quantity: i64) -> i64 {
    unit.saturating_mul(quantity)
}

/// A saturating sum of amounts.
pub fn sum_amounts(amounts: impl IntoIterator<Item = i64>) -> i64 {
    amounts.into_iter().fold(0, i64::saturating_add)
}

/// `amount × part / whole` (rounded down) without overflow; 0 when `whole` is 0.
pub fn share_of(amount: i64, part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    i64::try_from(i128::from(amount) * i128::from(part) / i128::from(whole)).unwrap_or(0)
}

/// The smallest amount Stripe charges in `currency`, in minor units.
pub fn minimum_amount(currency: &str) -> i64 {
    match currency {
        "gbp" => 30,
        "bgn" => 100,
        "aed" | "myr" | "pln" | "ron" => 200,
        "dkk" => 250,
        "nok" | "sek" => 300,
        "hkd" => 400,
        "mxn" | "thb" => 1000,
        "czk" => 1500,
        "huf" => 17500,
        _ => 50,
    }
}

/// An amount in minor units as Stripe writes it in messages: `$0.50`, `€2.00`, `¥50`.
pub fn format_amount(amount: i64, currency: &str) -> String {
    let symbol = match currency {
        "usd" | "aud" | "cad" | "nzd" | "sgd" | "hkd" | "mxn" => "$",
        "eur" => "€",
        "gbp" => "£",
        "jpy" => "¥",
        _ => "",
    };
    if ZERO_DECIMAL_CURRENCIES.contains(&currency) {
        format!("{symbol}{amount}")
    } else {
        format!("{symbol}{}.{:02}", amount / 100, amount % 100)
    }
}
