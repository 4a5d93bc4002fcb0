//! C `%.<p>g` number formatting.

/// Formats `v` like C's `printf("%.<prec>g", v)`.
pub fn fmt_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    let p = prec.max(1);
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e_str = format!("{:.*e}", p - 1, v);
    let (mant, exp) = e_str.split_once('e').unwrap_or((&e_str, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn g9() {
        assert_eq!(fmt_g(10.0, 9), "10");
        assert_eq!(fmt_g(0.5, 9), "0.5");
        assert_eq!(fmt_g(-4.083_333_5_f32 as f64, 9), "-4.08333349");
        assert_eq!(fmt_g(1.0f32 as f64 / 3.0f32 as f64, 9), "0.333333333");
        assert_eq!(fmt_g((1.0f32 / 3.0) as f64, 9), "0.333333343");
        assert_eq!(fmt_g(1.8446744e19f32 as f64, 9), "1.84467441e+19");
        assert_eq!(fmt_g(1e-5f32 as f64, 9), "9.99999975e-06");
        assert_eq!(fmt_g(6.3f32 as f64, 10), "6.300000191");
        assert_eq!(fmt_g(123456789.0, 9), "123456789");
        assert_eq!(fmt_g(1234567890.0, 9), "1.23456789e+09");
        assert_eq!(fmt_g(0.0001, 9), "0.0001");
    }
}
