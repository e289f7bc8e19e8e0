//! Exact numbers: strict decimal parsing, the fixed scales of storage, and half-even rounding.
//!
//! Quantities carry at most 3 decimals and money at most 4 (DESIGN section 2). Both are
//! `rust_decimal::Decimal` in the domain and `i64` at their fixed scale in storage; the
//! arithmetic that must round (a price times a rate, value relief) runs on `i128` mantissas so
//! that it is exact and rounds exactly once.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::Decimal;

/// Decimals a stored quantity keeps.
pub const QTY_SCALE: u32 = 3;
/// Decimals a stored money amount keeps: the ledger precision.
pub const MONEY_SCALE: u32 = 4;
/// Decimals an exchange rate may carry.
pub const RATE_SCALE: u32 = 8;
/// Longest text accepted as a number, so that parsing is bounded.
pub const NUMBER_TEXT_MAX_LEN: usize = 32;

/// Why a number was refused. Messages complete the sentence "the field ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("is empty")]
    Empty,
    #[error("is not a plain decimal number (digits with an optional leading '-' and one '.'; no exponent, no NaN, at most {NUMBER_TEXT_MAX_LEN} characters)")]
    Syntax,
    #[error("has {found} decimals where at most {allowed} are allowed")]
    TooManyDecimals { found: u32, allowed: u32 },
    #[error("is out of range: its magnitude may be at most {max}")]
    OutOfRange { max: Decimal },
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than zero")]
    NotPositive,
}

/// Parses a plain decimal: `-?[0-9]+(\.[0-9]+)?`. Anything else (exponents, `NaN`, spaces, a
/// leading `+`, a bare `.5`) is refused rather than guessed at.
pub fn parse_decimal(text: &str) -> Result<Decimal, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    if text.len() > NUMBER_TEXT_MAX_LEN {
        return Err(NumberError::Syntax);
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(NumberError::Syntax);
    }
    Decimal::from_str_exact(text).map_err(|_| NumberError::Syntax)
}

/// The number of decimals a value really has (`1.50` has 1).
pub fn decimals_of(d: Decimal) -> u32 {
    d.normalize().scale()
}

/// Rounds half-even (banker's rounding) to `dp` decimals.
pub fn round_half_even(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointNearestEven)
}

/// Divides with half-even rounding of the quotient; `None` when `den` is zero.
fn div_half_even(num: i128, den: i128) -> Option<i128> {
    if den == 0 {
        return None;
    }
    let (q, r) = (num / den, num % den);
    let twice = r.checked_abs()?.checked_mul(2)?;
    let den_abs = den.checked_abs()?;
    let away = match twice.cmp(&den_abs) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => q % 2 != 0,
    };
    if !away {
        return Some(q);
    }
    // The quotient moves one step away from zero, in the direction of the true result.
    let negative = (num < 0) != (den < 0);
    Some(if negative { q - 1 } else { q + 1 })
}

fn mantissa_at(d: Decimal, scale: u32) -> Option<i128> {
    let (m, s) = (d.mantissa(), d.scale());
    if s > scale {
        let f = 10i128.checked_pow(s - scale)?;
        (m % f == 0).then_some(m / f)
    } else {
        m.checked_mul(10i128.checked_pow(scale - s)?)
    }
}

/// `round(a x b x c)` to `dp` decimals, computed exactly and rounded once, half-even.
/// `None` when the exact product does not fit in 128 bits.
pub fn product_rounded(factors: &[Decimal], dp: u32) -> Option<Decimal> {
    let mut m: i128 = 1;
    let mut s: u32 = 0;
    for f in factors {
        m = m.checked_mul(f.mantissa())?;
        s += f.scale();
    }
    let m = if s > dp {
        div_half_even(m, 10i128.checked_pow(s - dp)?)?
    } else {
        m.checked_mul(10i128.checked_pow(dp - s)?)?
    };
    Decimal::try_from_i128_with_scale(m, dp).ok()
}

/// Most characters a plain decimal of an `i64` mantissa takes: 19 digits, a sign, a point and
/// the leading zero of a number below one.
const PLAIN_LEN_MAX: usize = 24;

/// `scaled` x 10^-`scale` written plainly: a minus sign when negative, the whole part (at
/// least `0`), and `scale` decimals after a point when `scale` > 0. With integer arithmetic
/// only: reports write millions of amounts, and the general decimal formatter was a tenth of
/// writing the trial balance of 10M postings.
fn plain(scaled: i64, scale: u32, buf: &mut [u8; PLAIN_LEN_MAX]) -> &str {
    assert!(scale <= 18, "a scale an i64 mantissa can carry");
    let mut v = scaled.unsigned_abs();
    let mut at = buf.len();
    let mut put = |at: &mut usize, byte: u8| {
        *at -= 1;
        buf[*at] = byte;
    };
    let digit = |v: &mut u64| {
        let d = b'0' + u8::try_from(*v % 10).expect("a digit");
        *v /= 10;
        d
    };
    for _ in 0..scale {
        put(&mut at, digit(&mut v));
    }
    if scale > 0 {
        put(&mut at, b'.');
    }
    loop {
        put(&mut at, digit(&mut v));
        if v == 0 {
            break;
        }
    }
    if scaled < 0 {
        put(&mut at, b'-');
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// `d` as `Decimal`'s `Display` writes it (every decimal of its scale), through [`plain`] when
/// no width, precision or flag asks for more and the mantissa fits an `i64`, as the ledger's
/// numbers do.
fn write_decimal(d: Decimal, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let plain_ok = f.width().is_none()
        && f.precision().is_none()
        && !f.sign_plus()
        && !f.alternate()
        && d.scale() <= 18
        // Negative zero keeps the general formatter's way of writing it.
        && !(d.is_zero() && d.is_sign_negative());
    match i64::try_from(d.mantissa()) {
        Ok(m) if plain_ok => f.write_str(plain(m, d.scale(), &mut [0; PLAIN_LEN_MAX])),
        _ => fmt::Display::fmt(&d, f),
    }
}

/// A fixed-point number written with exactly its kind's decimals: [`Money::at_scale`].
#[derive(Debug, Clone, Copy)]
pub struct AtScale {
    scaled: i64,
    scale: u32,
}

impl fmt::Display for AtScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_decimal(Decimal::new(self.scaled, self.scale), f)
    }
}

macro_rules! fixed {
    ($(#[$doc:meta])* $name:ident, $scale:expr, $max_units:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(Decimal);

        impl $name {
            /// Decimals this kind of number keeps in storage.
            pub const SCALE: u32 = $scale;
            /// Largest magnitude accepted, in whole units.
            pub const MAX_UNITS: i64 = $max_units;
            pub const ZERO: Self = Self(Decimal::ZERO);

            /// Parses text strictly (see [`parse_decimal`]) and checks scale and range.
            pub fn parse(text: &str) -> Result<Self, NumberError> {
                Self::from_decimal(parse_decimal(text)?)
            }

            /// Checks scale and range of an exact decimal.
            pub fn from_decimal(d: Decimal) -> Result<Self, NumberError> {
                let found = decimals_of(d);
                if found > Self::SCALE {
                    return Err(NumberError::TooManyDecimals { found, allowed: Self::SCALE });
                }
                if d.abs() > Decimal::from(Self::MAX_UNITS) {
                    return Err(NumberError::OutOfRange { max: Decimal::from(Self::MAX_UNITS) });
                }
                Ok(Self(d.normalize()))
            }

            /// The number from its stored form, an integer at [`Self::SCALE`].
            pub fn from_scaled(units: i64) -> Self {
                Self(Decimal::new(units, Self::SCALE).normalize())
            }

            /// The stored form: an integer at [`Self::SCALE`].
            pub fn scaled(self) -> i64 {
                let m = mantissa_at(self.0, Self::SCALE).expect("scale and range checked on construction");
                i64::try_from(m).expect("range checked on construction")
            }

            pub fn decimal(self) -> Decimal {
                self.0
            }
            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }
            pub fn is_negative(self) -> bool {
                self.0.is_sign_negative() && !self.0.is_zero()
            }
            pub fn is_positive(self) -> bool {
                self.0.is_sign_positive() && !self.0.is_zero()
            }
            pub fn abs(self) -> Self {
                Self(self.0.abs())
            }
        }

        impl $name {
            /// The number written with exactly [`Self::SCALE`] decimals (`12.5000` for money),
            /// as answers and reports print amounts at the ledger's precision.
            pub fn at_scale(self) -> AtScale {
                AtScale { scaled: self.scaled(), scale: Self::SCALE }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_decimal(self.0, f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        // Sums and differences of numbers at one scale stay at that scale, so they are exact.
        impl Add for $name {
            type Output = Self;
            fn add(self, o: Self) -> Self {
                Self((self.0 + o.0).normalize())
            }
        }
        impl Sub for $name {
            type Output = Self;
            fn sub(self, o: Self) -> Self {
                Self((self.0 - o.0).normalize())
            }
        }
        impl AddAssign for $name {
            fn add_assign(&mut self, o: Self) {
                *self = *self + o;
            }
        }
        impl SubAssign for $name {
            fn sub_assign(&mut self, o: Self) {
                *self = *self - o;
            }
        }
        // Negating zero gives zero, not a negative zero that prints as `-0`.
        impl Neg for $name {
            type Output = Self;
            fn neg(self) -> Self {
                if self.0.is_zero() {
                    Self::ZERO
                } else {
                    Self(-self.0)
                }
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        impl Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(Self::ZERO, Add::add)
            }
        }
    };
}

fixed!(
    /// A quantity of one item, at most 3 decimals (fewer where the item's unit says so).
    Qty,
    QTY_SCALE,
    1_000_000_000_000
);
fixed!(
    /// An amount of money in the base currency, at ledger precision (4 decimals).
    Money,
    MONEY_SCALE,
    100_000_000_000
);

impl Qty {
    /// Whether this quantity has no more decimals than `decimals` (an item's unit allows).
    pub fn fits_decimals(self, decimals: u32) -> bool {
        decimals_of(self.0) <= decimals
    }

    /// `self x num / den`, computed exactly and rounded once, half-even, to `decimals`
    /// (at most [`QTY_SCALE`]): a bill of materials scaled to a run's output. `None` when `den`
    /// is not positive or the result is out of range.
    pub fn scale(self, num: Qty, den: Qty, decimals: u32) -> Option<Qty> {
        if !den.is_positive() || decimals > QTY_SCALE {
            return None;
        }
        // Units of 10^-decimals: self x num x 10^decimals / (den x 10^3), all at scale 3.
        let n = i128::from(self.scaled())
            .checked_mul(i128::from(num.scaled()))?
            .checked_mul(10i128.checked_pow(decimals)?)?;
        let d = i128::from(den.scaled()).checked_mul(10i128.pow(QTY_SCALE))?;
        let units = div_half_even(n, d)?;
        let scaled = units.checked_mul(10i128.checked_pow(QTY_SCALE - decimals)?)?;
        let q = Qty::from_decimal(Decimal::new(i64::try_from(scaled).ok()?, QTY_SCALE)).ok()?;
        Some(q)
    }
}

impl Money {
    /// `round(factors...)` at ledger precision, half-even, rounded once.
    pub fn product(factors: &[Decimal]) -> Result<Self, NumberError> {
        let max = Decimal::from(Self::MAX_UNITS);
        let d = product_rounded(factors, MONEY_SCALE).ok_or(NumberError::OutOfRange { max })?;
        Self::from_decimal(d)
    }

    /// The value-relief rule: taking `taken` out of a balance holding `held` worth `self`
    /// moves all of the value when everything is taken, else `value x taken / held` rounded
    /// half-even, so an emptied balance is left with exactly zero value.
    pub fn relieve(self, held: Qty, taken: Qty) -> Money {
        assert!(
            taken.is_positive() || taken.is_zero(),
            "relief of a negative quantity"
        );
        assert!(taken <= held, "relief of more than is held");
        if taken == held {
            return self;
        }
        let num = i128::from(self.scaled()) * i128::from(taken.scaled());
        let units = div_half_even(num, i128::from(held.scaled())).expect("held is positive here");
        Money::from_scaled(i64::try_from(units).expect("relieved value is within the held value"))
    }

    /// `self x part / whole` rounded once, half-even, to ledger precision: the value of `part`
    /// units at the average of `whole` units worth `self`, where `part` may exceed `whole` (a
    /// count that finds more than the book). `None` when `whole` is not positive or the result
    /// is out of range.
    pub fn pro_rata(self, part: Qty, whole: Qty) -> Option<Money> {
        if !whole.is_positive() {
            return None;
        }
        let num = i128::from(self.scaled()).checked_mul(i128::from(part.scaled()))?;
        let units = div_half_even(num, i128::from(whole.scaled()))?;
        Money::from_decimal(Decimal::new(i64::try_from(units).ok()?, MONEY_SCALE)).ok()
    }

    /// The value of one unit when `qty` units are worth `self`, rounded once, half-even, to
    /// ledger precision (a run's unit cost). `None` when `qty` is not positive.
    pub fn per_unit(self, qty: Qty) -> Option<Money> {
        Money::pro_rata(self, Qty::from_scaled(10i64.pow(QTY_SCALE)), qty)
    }
}

/// An exchange rate into the base currency: positive, at most 8 decimals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    pub const ONE: Rate = Rate(Decimal::ONE);
    const MAX_UNITS: i64 = 1_000_000;

    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let d = parse_decimal(text)?;
        let found = decimals_of(d);
        if found > RATE_SCALE {
            return Err(NumberError::TooManyDecimals {
                found,
                allowed: RATE_SCALE,
            });
        }
        if d <= Decimal::ZERO {
            return Err(NumberError::NotPositive);
        }
        if d > Decimal::from(Self::MAX_UNITS) {
            return Err(NumberError::OutOfRange {
                max: Decimal::from(Self::MAX_UNITS),
            });
        }
        Ok(Rate(d.normalize()))
    }
    pub fn decimal(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_the_decimal_formatter_writes_them() {
        // Mantissas across every length an i64 has, both signs, every scale the ledger uses
        // and beyond, including values below one and sums that keep trailing zeros.
        let mut mantissas = vec![
            0i64,
            1,
            -1,
            9,
            -9,
            10,
            -10,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let mut m = 7i64;
        for _ in 0..18 {
            m = m.saturating_mul(10).saturating_add(3);
            mantissas.extend([m, -m, m / 7, -(m / 7), m - m % 1000]);
        }
        for &m in &mantissas {
            for scale in [0u32, 1, 2, 3, 4, 8, 18] {
                let d = Decimal::new(m, scale);
                assert_eq!(
                    plain(m, scale, &mut [0; PLAIN_LEN_MAX]),
                    d.to_string(),
                    "{m} at scale {scale}"
                );
                let mut general = String::new();
                fmt::Write::write_fmt(&mut general, format_args!("{}", Wrapped(d))).unwrap();
                assert_eq!(general, d.to_string(), "{m} at scale {scale}");
            }
        }
        // Sums keep their scale's trailing zeros, as Decimal writes them.
        let q = Qty::parse("1.5").unwrap() + Qty::parse("1.5").unwrap();
        assert_eq!(q.to_string(), q.decimal().to_string());
        // Flags and widths go to the general formatter.
        let q = Qty::parse("-2.25").unwrap();
        assert_eq!(
            format!("{q:>8}|{q:.1}|{q:+}"),
            format!("{0:>8}|{0:.1}|{0:+}", q.decimal())
        );
        // Negative zero as the general formatter writes it.
        let z = -Decimal::new(0, 2);
        assert_eq!(Wrapped(z).to_string(), z.to_string());
        // At the kind's scale: exactly its decimals, as `{:.4}` of the decimal gave.
        for text in ["0", "-0.0001", "12.5", "-99999.1234", "100000000000"] {
            let money = Money::parse(text).unwrap();
            assert_eq!(
                money.at_scale().to_string(),
                format!("{:.4}", money.decimal())
            );
            assert_eq!(
                format!("{:>14}", money.at_scale()),
                format!("{:>14.4}", money.decimal())
            );
        }
        assert_eq!(Qty::parse("-3").unwrap().at_scale().to_string(), "-3.000");
    }

    /// A decimal written through [`write_decimal`].
    struct Wrapped(Decimal);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_decimal(self.0, f)
        }
    }

    fn d(s: &str) -> Decimal {
        parse_decimal(s).unwrap()
    }

    #[test]
    fn strict_parsing_refuses_what_it_cannot_read_exactly() {
        for bad in [
            "", "1e5", "NaN", "inf", " 1", "1 ", "+1", ".5", "5.", "1.2.3", "0x10", "--1", "1,5",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse_decimal("-12.50").unwrap().to_string(), "-12.50");
        assert_eq!(parse_decimal(&"9".repeat(40)), Err(NumberError::Syntax));
    }

    #[test]
    fn scale_and_range_are_checked_not_rounded() {
        assert_eq!(
            Money::parse("1.23456"),
            Err(NumberError::TooManyDecimals {
                found: 5,
                allowed: 4
            })
        );
        assert_eq!(
            Qty::parse("0.0001"),
            Err(NumberError::TooManyDecimals {
                found: 4,
                allowed: 3
            })
        );
        assert!(
            Qty::parse("1.500").is_ok(),
            "trailing zeros are not decimals"
        );
        assert!(matches!(
            Qty::parse("1000000000001"),
            Err(NumberError::OutOfRange { .. })
        ));
        assert_eq!(Money::parse("12.3456").unwrap().scaled(), 123_456);
        assert_eq!(Qty::from_scaled(1_500).to_string(), "1.5");
    }

    #[test]
    fn half_even_rounds_ties_to_even() {
        assert_eq!(div_half_even(5, 2), Some(2));
        assert_eq!(div_half_even(7, 2), Some(4));
        assert_eq!(div_half_even(-5, 2), Some(-2));
        assert_eq!(div_half_even(-7, 2), Some(-4));
        assert_eq!(div_half_even(10, 3), Some(3));
        assert_eq!(div_half_even(20, 3), Some(7));
        assert_eq!(div_half_even(-20, 3), Some(-7));
    }

    #[test]
    fn product_is_rounded_once() {
        // 3 x 0.33335 x 1 = 1.00005, a tie at 4 decimals: half-even keeps 1.0000.
        assert_eq!(
            product_rounded(&[d("3"), d("0.33335"), d("1")], 4),
            Some(d("1.0000"))
        );
        // 1 x 0.00015 = a tie that rounds up to the even 0.0002.
        assert_eq!(
            product_rounded(&[d("1"), d("0.00015")], 4),
            Some(d("0.0002"))
        );
        // 100 x 1.5 x 7.12345678 = 1068.518517, one rounding.
        assert_eq!(
            product_rounded(&[d("100"), d("1.5"), d("7.12345678")], 4),
            Some(d("1068.5185"))
        );
    }

    #[test]
    fn scaling_and_unit_cost_round_once_half_even() {
        let q = |s: &str| Qty::parse(s).unwrap();
        // 0.04 kg per goggle x 2000 goggles = 80 kg.
        assert_eq!(q("0.04").scale(q("2000"), q("1"), 3), Some(q("80")));
        // 1 band per 3 goggles x 10 goggles = 3.333... bands: 3 whole bands.
        assert_eq!(q("1").scale(q("10"), q("3"), 0), Some(q("3")));
        // 2.5 rounds to the even 2; 3.5 to 4.
        assert_eq!(q("0.5").scale(q("5"), q("1"), 0), Some(q("2")));
        assert_eq!(q("0.5").scale(q("7"), q("1"), 0), Some(q("4")));
        assert_eq!(q("1").scale(q("1"), q("0"), 0), None);
        // 7280.0000 / 1950 = 3.73333... -> 3.7333.
        let m = Money::parse("7280").unwrap();
        assert_eq!(m.per_unit(q("1950")), Some(Money::parse("3.7333").unwrap()));
        // 100.00 x 4 / 3 = 133.3333...; 0.0001 x 1 / 2 is a tie at 0.00005 -> 0.0000.
        assert_eq!(
            Money::parse("100").unwrap().pro_rata(q("4"), q("3")),
            Some(Money::parse("133.3333").unwrap())
        );
        assert_eq!(
            Money::parse("0.0001").unwrap().pro_rata(q("1"), q("2")),
            Some(Money::ZERO)
        );
        assert_eq!(Money::parse("1").unwrap().pro_rata(q("1"), q("0")), None);
    }

    #[test]
    fn negated_zero_prints_as_zero() {
        // A stock count that finds the book, or one whose shortfall is worth nothing, posts
        // `-value` of a zero value; the answer must say 0.0000, as the stored entry does.
        assert_eq!(format!("{:.4}", (-Money::ZERO).decimal()), "0.0000");
        assert_eq!(
            format!("{:.4}", (-Money::parse("0.0000").unwrap()).decimal()),
            "0.0000"
        );
        assert_eq!((-Qty::parse("0.000").unwrap()).to_string(), "0");
        assert!(!(-Money::ZERO).is_negative());
        assert_eq!((-Money::parse("1.5").unwrap()).to_string(), "-1.5");
    }

    #[test]
    fn relief_of_thirds_leaves_exactly_zero() {
        let held = Qty::parse("3").unwrap();
        let mut value = Money::parse("100.0000").unwrap();
        let mut qty = held;
        let one = Qty::parse("1").unwrap();
        let mut moved = Money::ZERO;
        for _ in 0..3 {
            let v = value.relieve(qty, one);
            value -= v;
            qty -= one;
            moved += v;
        }
        assert_eq!(qty, Qty::ZERO);
        assert_eq!(value, Money::ZERO);
        assert_eq!(moved, Money::parse("100").unwrap());
    }
}
