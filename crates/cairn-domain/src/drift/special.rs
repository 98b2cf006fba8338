//! Special functions for the p-values: the normal CDF (`ndtr`) and the upper regularised
//! incomplete gamma function (`igamc`, hence the χ² survival function), ported from the Cephes
//! library as SciPy ships it (scipy/xsf `include/xsf/cephes/{ndtr,igam,gamma,lanczos,unity}.h`).
//! Same branches, same coefficients, same evaluation order, so the p-values agree with
//! `scipy.stats.norm.cdf` and `scipy.stats.chi2.sf` to a few ulps, down to the 1e-300 tails.

#![expect(
    clippy::excessive_precision,
    reason = "Cephes coefficients are kept digit for digit as published"
)]

use super::igam_coeff;

/// 2⁻⁵³, Cephes' `MACHEP`.
const MACHEP: f64 = 1.110_223_024_625_156_5e-16;
/// ln(DBL_MAX), Cephes' `MAXLOG`.
const MAXLOG: f64 = 7.097_827_128_933_839_730_962_063_185_871e2;
/// ln(π).
const LOGPI: f64 = 1.144_729_885_849_400_174_143_427_351_353_058_711_647;
/// ln(√(2π)).
const LS2PI: f64 = 0.918_938_533_204_672_741_78;
/// Euler's constant γ.
const EULER: f64 = 0.577_215_664_901_532_860_606_512_090_082_402_43;
/// Largest argument for which `lgam` is finite.
const MAXLGM: f64 = 2.556348e305;
/// Iteration cap of the incomplete gamma series and continued fraction.
const IGAM_MAXITER: usize = 2000;

/// Evaluates the polynomial Σ coef\[i\]·x^(N−i) (highest power first), Cephes `polevl`.
fn polevl(x: f64, coef: &[f64]) -> f64 {
    coef.iter().fold(0.0, |acc, &c| acc * x + c)
}

/// Like [`polevl`] with an implied leading coefficient 1, Cephes `p1evl`.
fn p1evl(x: f64, coef: &[f64]) -> f64 {
    coef.iter().fold(1.0, |acc, &c| acc * x + c)
}

/// The rational function num(x)/den(x) (lowest power first), evaluated in 1/x for |x| > 1,
/// Cephes `ratevl` with equal numerator and denominator degrees.
fn ratevl(x: f64, num: &[f64], den: &[f64]) -> f64 {
    debug_assert_eq!(num.len(), den.len());
    if x.abs() > 1.0 {
        let y = 1.0 / x;
        let num_ans = num.iter().rev().fold(0.0, |acc, &c| acc * y + c);
        let den_ans = den.iter().rev().fold(0.0, |acc, &c| acc * y + c);
        num_ans / den_ans
    } else {
        let num_ans = num.iter().fold(0.0, |acc, &c| acc * x + c);
        let den_ans = den.iter().fold(0.0, |acc, &c| acc * x + c);
        num_ans / den_ans
    }
}

const NDTR_P: [f64; 9] = [
    2.46196981473530512524E-10,
    5.64189564831068821977E-1,
    7.46321056442269912687E0,
    4.86371970985681366614E1,
    1.96520832956077098242E2,
    5.26445194995477358631E2,
    9.34528527171957607540E2,
    1.02755188689515710272E3,
    5.57535335369399327526E2,
];
const NDTR_Q: [f64; 8] = [
    1.32281951154744992508E1,
    8.67072140885989742329E1,
    3.54937778887819891062E2,
    9.75708501743205489753E2,
    1.82390916687909736289E3,
    2.24633760818710981792E3,
    1.65666309194161350182E3,
    5.57535340817727675546E2,
];
const NDTR_R: [f64; 6] = [
    5.64189583547755073984E-1,
    1.27536670759978104416E0,
    5.01905042251180477414E0,
    6.16021097993053585195E0,
    7.40974269950448939160E0,
    2.97886665372100240670E0,
];
const NDTR_S: [f64; 6] = [
    2.26052863220117276590E0,
    9.39603524938001434673E0,
    1.20489539808096656605E1,
    1.70814450747565897222E1,
    9.60896809063285878198E0,
    3.36907645100081516050E0,
];
const NDTR_T: [f64; 5] = [
    9.60497373987051638749E0,
    9.00260197203842689217E1,
    2.23200534594684319226E3,
    7.00332514112805075473E3,
    5.55923013010394962768E4,
];
const NDTR_U: [f64; 5] = [
    3.35617141647503099647E1,
    5.21357949780152679795E2,
    4.59432382970980127987E3,
    2.26290000613890934246E4,
    4.92673942608635921086E4,
];

/// The complementary error function erfc(a) = 1 − erf(a): a rational approximation of
/// e^(−a²)·P(|a|)/Q(|a|) for |a| ≥ 1 (two ranges split at 8), 1 − erf(a) below.
pub fn erfc(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    let x = a.abs();
    if x < 1.0 {
        return 1.0 - erf(a);
    }
    let z = -a * a;
    if z < -MAXLOG {
        return if a < 0.0 { 2.0 } else { 0.0 };
    }
    let z = z.exp();
    let (p, q) = if x < 8.0 {
        (polevl(x, &NDTR_P), p1evl(x, &NDTR_Q))
    } else {
        (polevl(x, &NDTR_R), p1evl(x, &NDTR_S))
    };
    let mut y = (z * p) / q;
    if a < 0.0 {
        y = 2.0 - y;
    }
    if y != 0.0 {
        return y;
    }
    if a < 0.0 { 2.0 } else { 0.0 }
}

/// The error function: x·T(x²)/U(x²) for |x| ≤ 1, 1 − erfc(x) beyond.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return -erf(-x);
    }
    if x.abs() > 1.0 {
        return 1.0 - erfc(x);
    }
    let z = x * x;
    x * polevl(z, &NDTR_T) / p1evl(z, &NDTR_U)
}

/// The standard normal CDF Φ(a) = ½·(1 + erf(a/√2)) for |a/√2| < 1, else ½·erfc(|a|/√2)
/// (reflected for a > 0). As in Cephes, 1 − ndtr(a) reaches exactly 0 for a ≳ 8.3.
pub fn ndtr(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    let x = a * std::f64::consts::FRAC_1_SQRT_2;
    let z = x.abs();
    if z < 1.0 {
        0.5 + 0.5 * erf(x)
    } else {
        let y = 0.5 * erfc(z);
        if x > 0.0 { 1.0 - y } else { y }
    }
}

const GAMMA_A: [f64; 5] = [
    8.11614167470508450300E-4,
    -5.95061904284301438324E-4,
    7.93650340457716943945E-4,
    -2.77777777730099687205E-3,
    8.33333333333331927722E-2,
];
const GAMMA_B: [f64; 6] = [
    -1.37825152569120859100E3,
    -3.88016315134637840924E4,
    -3.31612992738871184744E5,
    -1.16237097492762307383E6,
    -1.72173700820839662146E6,
    -8.53555664245765465627E5,
];
const GAMMA_C: [f64; 6] = [
    -3.51815701436523470549E2,
    -1.70642106651881159223E4,
    -2.20528590553854454839E5,
    -1.13933444367982507207E6,
    -2.53252307177582951285E6,
    -2.01889141433532773231E6,
];

/// sin(πx) with exact zeros at the integers, Cephes `sinpi`.
fn sinpi(x: f64) -> f64 {
    let (sign, x) = if x < 0.0 { (-1.0, -x) } else { (1.0, x) };
    let r = x % 2.0;
    let value = if r < 0.5 {
        (std::f64::consts::PI * r).sin()
    } else if r > 1.5 {
        (std::f64::consts::PI * (r - 2.0)).sin()
    } else {
        -(std::f64::consts::PI * (r - 1.0)).sin()
    };
    sign * value
}

/// ln|Γ(x)|, Cephes `lgam`: reflection below −34, a rational approximation on [2, 3] after
/// shifting below 13, Stirling's series above (with its short form above 1000).
pub fn lgam(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if x < -34.0 {
        let q = -x;
        let w = lgam(q);
        let mut p = q.floor();
        if p == q {
            return f64::INFINITY;
        }
        let mut z = q - p;
        if z > 0.5 {
            p += 1.0;
            z = p - q;
        }
        let z = q * sinpi(z);
        if z == 0.0 {
            return f64::INFINITY;
        }
        return LOGPI - z.ln() - w;
    }
    if x < 13.0 {
        let mut z = 1.0;
        let mut p = 0.0;
        let mut u = x;
        while u >= 3.0 {
            p -= 1.0;
            u = x + p;
            z *= u;
        }
        while u < 2.0 {
            if u == 0.0 {
                return f64::INFINITY;
            }
            z /= u;
            p += 1.0;
            u = x + p;
        }
        let z = z.abs();
        if u == 2.0 {
            return z.ln();
        }
        p -= 2.0;
        let shifted = x + p;
        let rational = shifted * polevl(shifted, &GAMMA_B) / p1evl(shifted, &GAMMA_C);
        return z.ln() + rational;
    }
    if x > MAXLGM {
        return f64::INFINITY;
    }
    let q = (x - 0.5) * x.ln() - x + LS2PI;
    if x >= 1000.0 {
        if x > 1.0e8 {
            return q;
        }
        let p = 1.0 / (x * x);
        let p = ((7.9365079365079365079365e-4 * p - 2.7777777777777777777778e-3) * p
            + 0.0833333333333333333333)
            / x;
        return q + p;
    }
    let p = 1.0 / (x * x);
    q + polevl(p, &GAMMA_A) / x
}

/// The Lanczos approximation's g, for the scaled sum below.
const LANCZOS_G: f64 = 6.024680040776729583740234375;
const LANCZOS_SUM_EXPG_SCALED_NUM: [f64; 13] = [
    0.006061842346248906525783753964555936883222,
    0.5098416655656676188125178644804694509993,
    19.51992788247617482847860966235652136208,
    449.9445569063168119446858607650988409623,
    6955.999602515376140356310115515198987526,
    75999.29304014542649875303443598909137092,
    601859.6171681098786670226533699352302507,
    3481712.15498064590882071018964774556468,
    14605578.08768506808414169982791359218571,
    43338889.32467613834773723740590533316085,
    86363131.28813859145546927288977868422342,
    103794043.1163445451906271053616070238554,
    56906521.91347156388090791033559122686859,
];
const LANCZOS_SUM_EXPG_SCALED_DENOM: [f64; 13] = [
    1.0,
    66.0,
    1925.0,
    32670.0,
    357423.0,
    2637558.0,
    13339535.0,
    45995730.0,
    105258076.0,
    150917976.0,
    120543840.0,
    39916800.0,
    0.0,
];

/// The Lanczos sum scaled by e^g, Cephes `lanczos_sum_expg_scaled`.
fn lanczos_sum_expg_scaled(x: f64) -> f64 {
    ratevl(x, &LANCZOS_SUM_EXPG_SCALED_NUM, &LANCZOS_SUM_EXPG_SCALED_DENOM)
}

const UNITY_LP: [f64; 7] = [
    4.5270000862445199635215E-5,
    4.9854102823193375972212E-1,
    6.5787325942061044846969E0,
    2.9911919328553073277375E1,
    6.0949667980987787057556E1,
    5.7112963590585538103336E1,
    2.0039553499201281259648E1,
];
const UNITY_LQ: [f64; 6] = [
    1.5062909083469192043167E1,
    8.3047565967967209469434E1,
    2.2176239823732856465394E2,
    3.0909872225312059774938E2,
    2.1642788614495947685003E2,
    6.0118660497603843919306E1,
];

/// ln(1 + x), Cephes `log1p`: x − x²/2 + x³·P(x)/Q(x) for 1 + x in [1/√2, √2].
fn cephes_log1p(x: f64) -> f64 {
    let z = 1.0 + x;
    if !(std::f64::consts::FRAC_1_SQRT_2..=std::f64::consts::SQRT_2).contains(&z) {
        return z.ln();
    }
    let z = x * x;
    let z = -0.5 * z + x * (z * polevl(x, &UNITY_LP) / p1evl(x, &UNITY_LQ));
    x + z
}

/// ln(1 + x) − x: its Taylor series Σ_{n≥2} (−x)^n/n·(−1) for |x| < ½, else directly.
fn log1pmx(x: f64) -> f64 {
    if x.abs() < 0.5 {
        let mut xfac = x;
        let mut res = 0.0;
        for n in 2..500 {
            xfac *= -x;
            let term = xfac / f64::from(n);
            res += term;
            if term.abs() < MACHEP * res.abs() {
                break;
            }
        }
        res
    } else {
        cephes_log1p(x) - x
    }
}

const UNITY_EP: [f64; 3] =
    [1.2617719307481059087798E-4, 3.0299440770744196129956E-2, 9.9999999999999999991025E-1];
const UNITY_EQ: [f64; 4] = [
    3.0019850513866445504159E-6,
    2.5244834034968410419224E-3,
    2.2726554820815502876593E-1,
    2.0000000000000000000897E0,
];

/// eˣ − 1, Cephes `expm1`: 2x·P(x²)/(Q(x²) − x·P(x²)) on [−½, ½].
pub fn expm1(x: f64) -> f64 {
    if !x.is_finite() {
        if x.is_nan() || x > 0.0 {
            return x;
        }
        return -1.0;
    }
    if !(-0.5..=0.5).contains(&x) {
        return x.exp() - 1.0;
    }
    let xx = x * x;
    let r = x * polevl(xx, &UNITY_EP);
    let r = r / (polevl(xx, &UNITY_EQ) - r);
    r + r
}

/// ζ(n) for n = 2..=41, the Taylor coefficients of ln Γ(1 + x) at 0. Produced by
/// `[scipy.special.zeta(n, 1) for n in range(2, 42)]` (SciPy 1.17.1).
const ZETA_2_TO_41: [f64; 40] = [
    1.6449340668482266,
    1.202056903159594,
    1.0823232337111381,
    1.0369277551433704,
    1.0173430619844488,
    1.008349277381923,
    1.0040773561979446,
    1.0020083928260826,
    1.0009945751278182,
    1.0004941886041194,
    1.0002460865533078,
    1.0001227133475785,
    1.0000612481350586,
    1.0000305882363072,
    1.0000152822594084,
    1.0000076371976376,
    1.000003817293265,
    1.0000019082127163,
    1.0000009539620338,
    1.0000004769329867,
    1.0000002384505027,
    1.000000119219926,
    1.000000059608189,
    1.0000000298035034,
    1.0000000149015549,
    1.0000000074507118,
    1.000000003725334,
    1.0000000018626598,
    1.0000000009313275,
    1.0000000004656628,
    1.000000000232831,
    1.0000000001164155,
    1.0000000000582077,
    1.0000000000291038,
    1.000000000014552,
    1.000000000007276,
    1.000000000003638,
    1.000000000001819,
    1.0000000000009095,
    1.0000000000004547,
];

/// ln Γ(1 + x) near 0 from its Taylor series −γx + Σ_{n≥2} ζ(n)·(−x)^n/n.
fn lgam1p_taylor(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let mut res = -EULER * x;
    let mut xfac = -x;
    for (offset, zeta) in ZETA_2_TO_41.iter().enumerate() {
        let n = offset as f64 + 2.0;
        xfac *= -x;
        let coeff = zeta * xfac / n;
        res += coeff;
        if coeff.abs() < MACHEP * res.abs() {
            break;
        }
    }
    res
}

/// ln Γ(1 + x), accurate near x = 0 and x = 1, Cephes `lgam1p`.
fn lgam1p(x: f64) -> f64 {
    if x.abs() <= 0.5 {
        lgam1p_taylor(x)
    } else if (x - 1.0).abs() < 0.5 {
        x.ln() + lgam1p_taylor(x - 1.0)
    } else {
        lgam(x + 1.0)
    }
}

/// xᵃ·e⁻ˣ/Γ(a), the common prefactor of the incomplete gamma expansions, through the Lanczos
/// approximation when a and x are close (DLMF 8.12; Cephes `igam_fac`).
fn igam_fac(a: f64, x: f64) -> f64 {
    if (a - x).abs() > 0.4 * a.abs() {
        let ax = a * x.ln() - x - lgam(a);
        if ax < -MAXLOG {
            return 0.0;
        }
        return ax.exp();
    }
    let fac = a + LANCZOS_G - 0.5;
    let mut res = (fac / std::f64::consts::E).sqrt() / lanczos_sum_expg_scaled(a);
    if a < 200.0 && x < 200.0 {
        res *= (a - x).exp() * (x / fac).powf(a);
    } else {
        let num = x - a - LANCZOS_G + 0.5;
        res *= (a * log1pmx(num / fac) + x * (0.5 - LANCZOS_G) / fac).exp();
    }
    res
}

/// Q(a, x) by the continued fraction of DLMF 8.9.2 (Cephes `igamc_continued_fraction`).
fn igamc_continued_fraction(a: f64, x: f64) -> f64 {
    const BIG: f64 = 4.503599627370496e15;
    const BIGINV: f64 = 2.22044604925031308085e-16;
    let ax = igam_fac(a, x);
    if ax == 0.0 {
        return 0.0;
    }
    let mut y = 1.0 - a;
    let mut z = x + y + 1.0;
    let mut c = 0.0;
    let mut pkm2 = 1.0;
    let mut qkm2 = x;
    let mut pkm1 = x + 1.0;
    let mut qkm1 = z * x;
    let mut ans = pkm1 / qkm1;
    for _ in 0..IGAM_MAXITER {
        c += 1.0;
        y += 1.0;
        z += 2.0;
        let yc = y * c;
        let pk = pkm1 * z - pkm2 * yc;
        let qk = qkm1 * z - qkm2 * yc;
        let t = if qk != 0.0 {
            let r = pk / qk;
            let t = ((ans - r) / r).abs();
            ans = r;
            t
        } else {
            1.0
        };
        pkm2 = pkm1;
        pkm1 = pk;
        qkm2 = qkm1;
        qkm1 = qk;
        if pk.abs() > BIG {
            pkm2 *= BIGINV;
            pkm1 *= BIGINV;
            qkm2 *= BIGINV;
            qkm1 *= BIGINV;
        }
        if t <= MACHEP {
            break;
        }
    }
    ans * ax
}

/// P(a, x) by the power series of DLMF 8.11.4 (Cephes `igam_series`).
fn igam_series(a: f64, x: f64) -> f64 {
    let ax = igam_fac(a, x);
    if ax == 0.0 {
        return 0.0;
    }
    let mut r = a;
    let mut c = 1.0;
    let mut ans = 1.0;
    for _ in 0..IGAM_MAXITER {
        r += 1.0;
        c *= x / r;
        ans += c;
        if c <= MACHEP * ans {
            break;
        }
    }
    ans * ax / a
}

/// Q(a, x) for small x by DLMF 8.7.3, avoiding the cancellation of 1 − P (Cephes
/// `igamc_series`).
fn igamc_series(a: f64, x: f64) -> f64 {
    let mut fac = 1.0;
    let mut sum = 0.0;
    for n in 1..IGAM_MAXITER {
        let n = n as f64;
        fac *= -x / n;
        let term = fac / (a + n);
        sum += term;
        if term.abs() <= MACHEP * sum.abs() {
            break;
        }
    }
    let logx = x.ln();
    let term = -expm1(a * logx - lgam1p(a));
    term - (a * logx - lgam(a)).exp() * sum
}

/// Which tail [`asymptotic_series`] returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    Lower,
    Upper,
}

/// P(a, x) or Q(a, x) for a ≈ x by Temme's uniform expansion (DLMF 8.12.3/8.12.4):
/// ½·erfc(∓η·√(a/2)) ± e^(−aη²/2)/√(2πa)·Σ_k a^(−k)·Σ_n d_{k,n}·η^n, with
/// η = sign(λ−1)·√(−2·(ln(1+σ) − σ)), λ = x/a, σ = (x − a)/a.
fn asymptotic_series(a: f64, x: f64, tail: Tail) -> f64 {
    let sign = if tail == Tail::Lower { -1.0 } else { 1.0 };
    let lambda = x / a;
    let sigma = (x - a) / a;
    let eta = if lambda > 1.0 {
        (-2.0 * log1pmx(sigma)).sqrt()
    } else if lambda < 1.0 {
        -(-2.0 * log1pmx(sigma)).sqrt()
    } else {
        0.0
    };
    let mut res = 0.5 * erfc(sign * eta * (a / 2.0).sqrt());
    let mut etapow = [0.0; igam_coeff::N];
    etapow[0] = 1.0;
    let mut maxpow = 0;
    let mut sum = 0.0;
    let mut afac = 1.0;
    let mut absoldterm = f64::INFINITY;
    for row in &igam_coeff::D {
        let mut ck = row[0];
        for n in 1..igam_coeff::N {
            if n > maxpow {
                etapow[n] = eta * etapow[n - 1];
                maxpow += 1;
            }
            let ckterm = row[n] * etapow[n];
            ck += ckterm;
            if ckterm.abs() < MACHEP * ck.abs() {
                break;
            }
        }
        let term = ck * afac;
        let absterm = term.abs();
        if absterm > absoldterm {
            break;
        }
        sum += term;
        if absterm < MACHEP * sum.abs() {
            break;
        }
        absoldterm = absterm;
        afac /= a;
    }
    res += sign * (-0.5 * a * eta * eta).exp() * sum / (2.0 * std::f64::consts::PI * a).sqrt();
    res
}

/// Whether (a, x) lies where Cephes switches to the uniform asymptotic expansion.
fn in_asymptotic_regime(a: f64, x: f64) -> bool {
    let absxma_a = (x - a).abs() / a;
    (a > 20.0 && a < 200.0 && absxma_a < 0.3) || (a > 200.0 && absxma_a < 4.5 / a.sqrt())
}

/// The lower regularised incomplete gamma function P(a, x) = γ(a, x)/Γ(a).
pub fn igam(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() || x < 0.0 || a < 0.0 {
        return f64::NAN;
    }
    if a == 0.0 {
        return if x > 0.0 { 1.0 } else { f64::NAN };
    }
    if x == 0.0 {
        return 0.0;
    }
    if a.is_infinite() {
        return if x.is_infinite() { f64::NAN } else { 0.0 };
    }
    if x.is_infinite() {
        return 1.0;
    }
    if in_asymptotic_regime(a, x) {
        return asymptotic_series(a, x, Tail::Lower);
    }
    if x > 1.0 && x > a {
        return 1.0 - igamc(a, x);
    }
    igam_series(a, x)
}

/// The upper regularised incomplete gamma function Q(a, x) = Γ(a, x)/Γ(a) = 1 − P(a, x),
/// Cephes `igamc` (Temme's expansion for a ≈ x, else the continued fraction for x > a, the
/// series of P for x < a, and DLMF 8.7.3 for small x).
pub fn igamc(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() || x < 0.0 || a < 0.0 {
        return f64::NAN;
    }
    if a == 0.0 {
        return if x > 0.0 { 0.0 } else { f64::NAN };
    }
    if x == 0.0 {
        return 1.0;
    }
    if a.is_infinite() {
        return if x.is_infinite() { f64::NAN } else { 1.0 };
    }
    if x.is_infinite() {
        return 0.0;
    }
    if in_asymptotic_regime(a, x) {
        return asymptotic_series(a, x, Tail::Upper);
    }
    if x > 1.1 {
        if x < a { 1.0 - igam_series(a, x) } else { igamc_continued_fraction(a, x) }
    } else if x <= 0.5 {
        if -0.4 / x.ln() < a { 1.0 - igam_series(a, x) } else { igamc_series(a, x) }
    } else if x * 1.1 < a {
        1.0 - igam_series(a, x)
    } else {
        igamc_series(a, x)
    }
}

/// The χ² survival function with `dof` degrees of freedom: Q(dof/2, x/2) (`scipy.special.chdtrc`,
/// hence `scipy.stats.chi2.sf`).
pub fn chi2_sf(dof: f64, x: f64) -> f64 {
    if x < 0.0 {
        return f64::NAN;
    }
    igamc(dof / 2.0, x / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, rtol: f64, what: &str) {
        if expected == 0.0 {
            assert_eq!(actual, 0.0, "{what}");
            return;
        }
        let relative = ((actual - expected) / expected).abs();
        assert!(relative <= rtol, "{what}: {actual:e} vs {expected:e} (relative {relative:e})");
    }

    /// `[(x, scipy.special.ndtr(x)) for x in (-40, -38, -20, -8.3, -5, -2.5, -1, -0.3, 0, 0.7,
    /// 1.2, 3, 6, 8.2)]`, SciPy 1.17.1.
    #[test]
    fn ndtr_matches_scipy() {
        let expected = [
            (-40.0, 0.0),
            (-38.0, 0.0),
            (-20.0, 2.7536241186061556e-89),
            (-8.3, 5.2055697448902465e-17),
            (-5.0, 2.866515718791933e-07),
            (-2.5, 0.006209665325776132),
            (-1.0, 0.15865525393145707),
            (-0.3, 0.3820885778110474),
            (0.0, 0.5),
            (0.7, 0.758036347776927),
            (1.2, 0.8849303297782918),
            (3.0, 0.9986501019683699),
            (6.0, 0.9999999990134123),
            (8.2, 0.9999999999999999),
        ];
        for (x, value) in expected {
            assert_close(ndtr(x), value, 1e-14, &format!("ndtr({x})"));
        }
        // The Z-test's p-value: 2·(1 − Φ(|z|)) underflows to exactly 0 like SciPy's.
        assert_eq!(2.0 * (1.0 - ndtr(8.3)), 0.0);
    }

    /// `[(df, x, scipy.stats.chi2.sf(x, df)) for df, x in cases]` with the cases below, SciPy
    /// 1.17.1, covering every
    /// branch of igamc: the series for small x (dof 1 and 2), 1 − P, the continued fraction,
    /// the asymptotic expansion (dof 49 near its mean, dof 999 near its mean) and the far tail.
    #[test]
    fn chi2_sf_matches_scipy() {
        let expected = [
            (1.0, 0.1, 0.7518296340458492),
            (1.0, 0.95, 0.3297192973126762),
            (1.0, 2.0, 0.15729920705028105),
            (1.0, 30.0, 4.3204630578274955e-08),
            (1.0, 370.0, 1.8715184186364012e-82),
            (2.0, 0.5, 0.7788007830714049),
            (2.0, 1.9, 0.38674102345450123),
            (3.0, 0.001, 0.9999915920809419),
            (3.0, 4.0, 0.26146412994911117),
            (4.0, 0.2, 0.9953211598395555),
            (7.0, 15.0, 0.03599940476342876),
            (49.0, 45.0, 0.6359803139552492),
            (49.0, 60.0, 0.1348643465253207),
            (49.0, 130.0, 2.906385673302699e-09),
            (49.0, 400.0, 1.475476065098271e-56),
            (9.0, 400.0, 1.3699125019662825e-80),
            (999.0, 1010.0, 0.39739534866871007),
            (999.0, 1300.0, 3.398217496515481e-10),
            (4.0, 3000.0, 0.0),
        ];
        for (dof, x, value) in expected {
            assert_close(chi2_sf(dof, x), value, 1e-13, &format!("chi2.sf({x}, {dof})"));
        }
    }

    #[test]
    fn igamc_edges() {
        assert_eq!(igamc(3.0, 0.0), 1.0);
        assert_eq!(igamc(3.0, f64::INFINITY), 0.0);
        assert!(igamc(-1.0, 1.0).is_nan());
        assert_eq!(igamc(0.0, 1.0), 0.0);
        let sum = igam(5.5, 4.0) + igamc(5.5, 4.0);
        assert!((sum - 1.0).abs() < 1e-15);
    }
}
