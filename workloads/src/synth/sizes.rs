//! Size and alignment distributions for synthetic workloads.

use std::path::Path;

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal, Normal, Pareto, Zipf};

use crate::error::TraceError;
use crate::op::Align;

/// A distribution of request sizes, in bytes. Samples are rounded to whole
/// bytes and clamped to the workload's `[min, max]`.
#[derive(Debug, Clone, PartialEq)]
pub enum SizeDist {
    /// Always `size`.
    Constant(u64),
    /// Uniform on `min..=max`.
    Uniform {
        /// Smallest.
        min: u64,
        /// Largest.
        max: u64,
    },
    /// Normal with `mean` and standard deviation `sd`.
    Normal {
        /// Mean, bytes.
        mean: f64,
        /// Standard deviation, bytes.
        sd: f64,
    },
    /// Lognormal with the given median and σ of the underlying normal.
    LogNormal {
        /// Median, bytes (e^μ).
        median: f64,
        /// σ.
        sigma: f64,
    },
    /// Exponential with `mean`.
    Exponential {
        /// Mean, bytes.
        mean: f64,
    },
    /// Pareto with `scale` (the minimum) and `shape` (α).
    Pareto {
        /// Smallest value, bytes.
        scale: f64,
        /// α: smaller is heavier-tailed.
        shape: f64,
    },
    /// Zipf over size classes: the k-th class with weight 1/k^s.
    Zipf {
        /// Classes, most frequent first.
        classes: Vec<u64>,
        /// Exponent s.
        exponent: f64,
    },
    /// An empirical histogram: `sizes[i]` with weight `weights[i]`.
    Empirical {
        /// Sizes.
        sizes: Vec<u64>,
        /// Weights (any positive scale).
        weights: Vec<f64>,
    },
    /// A mixture: pick a component by weight, then sample it.
    Mixture(Vec<(f64, SizeDist)>),
}

/// A [`SizeDist`] ready to sample.
#[derive(Debug, Clone)]
pub enum SizeSampler {
    /// Constant.
    Constant(u64),
    /// Uniform.
    Uniform(u64, u64),
    /// Normal.
    Normal(Normal<f64>),
    /// Lognormal.
    LogNormal(LogNormal<f64>),
    /// Exponential.
    Exponential(Exp<f64>),
    /// Pareto.
    Pareto(Pareto<f64>),
    /// Zipf rank over classes.
    Zipf(Zipf<f64>, Vec<u64>),
    /// Weighted table.
    Table(WeightedIndex<f64>, Vec<u64>),
    /// Weighted mixture.
    Mixture(WeightedIndex<f64>, Vec<SizeSampler>),
}

impl SizeDist {
    /// Check the parameters and prepare sampling.
    pub fn sampler(&self) -> Result<SizeSampler, String> {
        let positive = |value: f64, what: &str| {
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(format!("{what} must be a positive number, found {value}"))
            }
        };
        Ok(match self {
            SizeDist::Constant(size) => SizeSampler::Constant(*size),
            SizeDist::Uniform { min, max } => {
                if min > max {
                    return Err(format!("uniform sizes need min <= max, found {min} > {max}"));
                }
                SizeSampler::Uniform(*min, *max)
            }
            SizeDist::Normal { mean, sd } => SizeSampler::Normal(
                Normal::new(*mean, positive(*sd, "the standard deviation")?).map_err(|e| e.to_string())?,
            ),
            SizeDist::LogNormal { median, sigma } => SizeSampler::LogNormal(
                LogNormal::new(positive(*median, "the median")?.ln(), positive(*sigma, "sigma")?)
                    .map_err(|e| e.to_string())?,
            ),
            SizeDist::Exponential { mean } => {
                SizeSampler::Exponential(Exp::new(1.0 / positive(*mean, "the mean")?).map_err(|e| e.to_string())?)
            }
            SizeDist::Pareto { scale, shape } => SizeSampler::Pareto(
                Pareto::new(positive(*scale, "the scale")?, positive(*shape, "the shape")?)
                    .map_err(|e| e.to_string())?,
            ),
            SizeDist::Zipf { classes, exponent } => {
                if classes.is_empty() {
                    return Err("zipf needs at least one class".into());
                }
                let zipf = Zipf::new(classes.len() as f64, *exponent).map_err(|e| format!("zipf: {e}"))?;
                SizeSampler::Zipf(zipf, classes.clone())
            }
            SizeDist::Empirical { sizes, weights } => {
                let index = WeightedIndex::new(weights).map_err(|e| format!("histogram weights: {e}"))?;
                SizeSampler::Table(index, sizes.clone())
            }
            SizeDist::Mixture(parts) => {
                let index =
                    WeightedIndex::new(parts.iter().map(|(w, _)| *w)).map_err(|e| format!("mixture weights: {e}"))?;
                let samplers = parts.iter().map(|(_, dist)| dist.sampler()).collect::<Result<_, _>>()?;
                SizeSampler::Mixture(index, samplers)
            }
        })
    }

    /// Read an empirical histogram from a CSV file of `size,weight` rows (a
    /// header row is allowed; more columns are ignored).
    pub fn from_csv(path: &Path) -> Result<SizeDist, TraceError> {
        let name = path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| csv_error(&name, e))?;
        let (mut sizes, mut weights) = (Vec::new(), Vec::new());
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|e| csv_error(&name, e))?;
            let line = record.position().map_or(index as u64 + 1, |p| p.line());
            let size = record.get(0).unwrap_or("");
            let weight = record.get(1).unwrap_or("");
            match (size.parse::<u64>(), weight.parse::<f64>()) {
                (Ok(size), Ok(weight)) if weight.is_finite() && weight >= 0.0 => {
                    sizes.push(size);
                    weights.push(weight);
                }
                _ if index == 0 => continue, // a header row
                _ => {
                    return Err(TraceError::Syntax {
                        path: name,
                        line,
                        expected: "a row `size,weight` (a whole number of bytes and a non-negative weight)".into(),
                        found: format!("{size},{weight}"),
                    });
                }
            }
        }
        if sizes.is_empty() || weights.iter().all(|&w| w == 0.0) {
            return Err(TraceError::Syntax {
                path: name,
                line: 1,
                expected: "at least one `size,weight` row with a positive weight".into(),
                found: "none".into(),
            });
        }
        Ok(SizeDist::Empirical { sizes, weights })
    }
}

fn csv_error(path: &str, error: csv::Error) -> TraceError {
    let line = error.position().map_or(0, |p| p.line());
    match error.into_kind() {
        csv::ErrorKind::Io(error) => TraceError::Io { path: path.to_string(), error },
        other => TraceError::Syntax {
            path: path.to_string(),
            line,
            expected: "CSV text".into(),
            found: format!("{other:?}"),
        },
    }
}

impl SizeSampler {
    /// One size, unclamped (may be negative or fractional for continuous
    /// distributions).
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            SizeSampler::Constant(size) => *size as f64,
            SizeSampler::Uniform(min, max) => rng.random_range(*min..=*max) as f64,
            SizeSampler::Normal(d) => d.sample(rng),
            SizeSampler::LogNormal(d) => d.sample(rng),
            SizeSampler::Exponential(d) => d.sample(rng),
            SizeSampler::Pareto(d) => d.sample(rng),
            SizeSampler::Zipf(d, classes) => {
                let rank = d.sample(rng) as usize;
                classes[rank.clamp(1, classes.len()) - 1] as f64
            }
            SizeSampler::Table(index, sizes) => sizes[index.sample(rng)] as f64,
            SizeSampler::Mixture(index, parts) => parts[index.sample(rng)].sample(rng),
        }
    }
}

/// A distribution of alignments: a weighted list.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignDist {
    /// Alignments and their weights.
    pub choices: Vec<(Align, f64)>,
}

impl AlignDist {
    /// Always `align`.
    pub fn fixed(align: Align) -> AlignDist {
        AlignDist { choices: vec![(align, 1.0)] }
    }

    /// Parse `16`, `unspecified`, or a weighted list `16:0.9/64:0.08/4096:0.02`.
    pub fn parse(text: &str) -> Result<AlignDist, String> {
        let mut choices = Vec::new();
        for item in text.split('/') {
            let (value, weight) = match item.split_once(':') {
                Some((value, weight)) => (
                    value,
                    weight
                        .parse::<f64>()
                        .ok()
                        .filter(|w| w.is_finite() && *w > 0.0)
                        .ok_or(format!("bad weight in `{item}`"))?,
                ),
                None => (item, 1.0),
            };
            let align = if value == "unspecified" {
                Align::UNSPECIFIED
            } else {
                value
                    .parse::<u64>()
                    .ok()
                    .and_then(Align::new)
                    .ok_or(format!("`{value}` is not a power-of-two alignment"))?
            };
            choices.push((align, weight));
        }
        Ok(AlignDist { choices })
    }

    /// The canonical text.
    pub fn spec(&self) -> String {
        let word = |align: Align| align.bytes().map_or("unspecified".to_string(), |b| b.to_string());
        if let [(align, _)] = self.choices.as_slice() {
            return word(*align);
        }
        self.choices.iter().map(|(align, weight)| format!("{}:{weight}", word(*align))).collect::<Vec<_>>().join("/")
    }

    /// Prepare sampling.
    pub fn sampler(&self) -> Result<AlignSampler, String> {
        if let [(align, _)] = self.choices.as_slice() {
            return Ok(AlignSampler::Fixed(*align));
        }
        let index =
            WeightedIndex::new(self.choices.iter().map(|(_, w)| *w)).map_err(|e| format!("alignment weights: {e}"))?;
        Ok(AlignSampler::Weighted(index, self.choices.iter().map(|(a, _)| *a).collect()))
    }
}

/// An [`AlignDist`] ready to sample.
#[derive(Debug, Clone)]
pub enum AlignSampler {
    /// One alignment; draws nothing from the RNG.
    Fixed(Align),
    /// Weighted choice.
    Weighted(WeightedIndex<f64>, Vec<Align>),
}

impl AlignSampler {
    /// One alignment.
    #[inline]
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Align {
        match self {
            AlignSampler::Fixed(align) => *align,
            AlignSampler::Weighted(index, aligns) => aligns[index.sample(rng)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samplers_follow_their_distributions() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mean = |dist: SizeDist, rng: &mut ChaCha8Rng| {
            let sampler = dist.sampler().unwrap();
            (0..200_000).map(|_| sampler.sample(rng)).sum::<f64>() / 200_000.0
        };
        assert!((mean(SizeDist::Uniform { min: 10, max: 20 }, &mut rng) - 15.0).abs() < 0.05);
        assert!((mean(SizeDist::Exponential { mean: 100.0 }, &mut rng) - 100.0).abs() < 1.5);
        assert!((mean(SizeDist::Normal { mean: 500.0, sd: 50.0 }, &mut rng) - 500.0).abs() < 0.5);
        // Lognormal mean is median·e^(σ²/2).
        let expected = 64.0 * (0.5f64 * 0.5 / 2.0).exp();
        assert!((mean(SizeDist::LogNormal { median: 64.0, sigma: 0.5 }, &mut rng) - expected).abs() < 0.5);
        assert_eq!(mean(SizeDist::Constant(7), &mut rng), 7.0);
    }

    #[test]
    fn zipf_favours_the_first_class() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let sampler = SizeDist::Zipf { classes: vec![16, 32, 64], exponent: 1.0 }.sampler().unwrap();
        let mut counts = [0u32; 3];
        for _ in 0..60_000 {
            let size = sampler.sample(&mut rng) as u64;
            counts[[16, 32, 64].iter().position(|&c| c == size).unwrap()] += 1;
        }
        // Weights 1, 1/2, 1/3 of 11/6: 54.5%, 27.3%, 18.2%.
        assert!((f64::from(counts[0]) / 60_000.0 - 6.0 / 11.0).abs() < 0.01, "{counts:?}");
        assert!((f64::from(counts[2]) / 60_000.0 - 2.0 / 11.0).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn bad_parameters_are_explained() {
        assert!(SizeDist::LogNormal { median: -1.0, sigma: 1.0 }.sampler().unwrap_err().contains("median"));
        assert!(SizeDist::Uniform { min: 5, max: 1 }.sampler().unwrap_err().contains("min <= max"));
        assert!(AlignDist::parse("24").unwrap_err().contains("power-of-two"));
        assert!(AlignDist::parse("16:x").unwrap_err().contains("bad weight"));
        assert_eq!(AlignDist::parse("16:0.9/64:0.1").unwrap().spec(), "16:0.9/64:0.1");
        assert_eq!(AlignDist::parse("unspecified").unwrap().choices[0].0, Align::UNSPECIFIED);
    }

    #[test]
    fn histograms_read_from_csv_with_line_numbers_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "size,weight\n16,3\n64, 1\n").unwrap();
        assert_eq!(
            SizeDist::from_csv(&good).unwrap(),
            SizeDist::Empirical { sizes: vec![16, 64], weights: vec![3.0, 1.0] }
        );
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "16,3\n64,-1\n").unwrap();
        let message = SizeDist::from_csv(&bad).unwrap_err().to_string();
        assert!(message.contains("bad.csv:2: expected a row `size,weight`"), "{message}");
    }
}
