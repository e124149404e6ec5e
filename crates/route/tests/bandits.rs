//! Simulated bandit environments: arms with known true mean rewards and Gaussian noise, rewards
//! fed back into per-arm statistics, and the policies' convergence, regret and per-cluster
//! preferences measured against them.

use dbopt_route::{Arm, Policy, PolicyParams, RewardStats, choose};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Noise standard deviation of a reward.
const NOISE_SD: f64 = 0.3;

/// Running sums of one arm's rewards in one context.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    n: u64,
    sum: f64,
    sum_sq: f64,
}

impl Acc {
    fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    fn stats(&self) -> RewardStats {
        RewardStats::from_sums(self.n, self.sum, self.sum_sq)
    }
}

/// A Gaussian reward with the given mean.
fn reward(mean: f64, rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    mean + NOISE_SD * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How an arm is chosen in a simulation.
#[derive(Debug, Clone, Copy)]
enum Router {
    Policy(Policy),
    Uniform,
}

/// One context's run: the arm chosen each round and the cumulative pseudo-regret after each round.
struct Run {
    choices: Vec<usize>,
    regret: Vec<f64>,
}

/// Runs `rounds` queries of one context (cluster stats == table stats) against `means`.
fn simulate(router: Router, means: &[f64], params: &PolicyParams, rounds: usize, seed: u64) -> Run {
    let mut policy_rng = StdRng::seed_from_u64(seed);
    let mut env_rng = StdRng::seed_from_u64(seed ^ 0x5eed_0fe4_7100);
    let top = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut accs = vec![Acc::default(); means.len()];
    let mut run = Run {
        choices: Vec::with_capacity(rounds),
        regret: Vec::with_capacity(rounds),
    };
    let mut cumulative = 0.0;
    for _ in 0..rounds {
        let arm = match router {
            Router::Uniform => policy_rng.random_range(0..means.len()),
            Router::Policy(policy) => {
                let arms: Vec<Arm> = accs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Arm {
                        id: format!("L{i}"),
                        cluster: a.stats(),
                        table: a.stats(),
                    })
                    .collect();
                choose(policy, &arms, params, &mut policy_rng).unwrap().arm
            }
        };
        accs[arm].push(reward(means[arm], &mut env_rng));
        cumulative += top - means[arm];
        run.choices.push(arm);
        run.regret.push(cumulative);
    }
    run
}

/// Share of `choices` equal to `arm`.
fn share(choices: &[usize], arm: usize) -> f64 {
    choices.iter().filter(|&&c| c == arm).count() as f64 / choices.len() as f64
}

const MEANS: [f64; 3] = [0.1, 0.5, 0.3];
const BEST: usize = 1;

#[test]
fn each_policy_converges_to_the_best_arm() {
    let cases = [
        (Policy::EpsilonGreedy, 0.1, 0.85),
        (Policy::Ucb1, 0.2, 0.70),
        (Policy::Thompson, 0.2, 0.70),
    ];
    for (policy, rate, min_share) in cases {
        let params = PolicyParams {
            exploration_rate: rate,
            ..Default::default()
        };
        for seed in [1, 2, 3] {
            let run = simulate(Router::Policy(policy), &MEANS, &params, 3000, seed);
            let s = share(&run.choices[2000..], BEST);
            println!("{policy} seed {seed}: best-arm share of last 1000 = {s:.3}");
            assert!(
                s > min_share,
                "{policy} seed {seed}: share {s:.3} <= {min_share}"
            );
        }
    }
}

#[test]
fn ucb1_and_thompson_regret_grows_sublinearly() {
    let params = PolicyParams::default();
    let seeds = [11, 12, 13, 14, 15];
    let ratio = |router: Router| {
        let (mut r1000, mut r4000) = (0.0, 0.0);
        for seed in seeds {
            let run = simulate(router, &MEANS, &params, 4000, seed);
            r1000 += run.regret[999];
            r4000 += run.regret[3999];
        }
        (r4000 / r1000, r4000 / seeds.len() as f64)
    };
    let (uniform, uniform_regret) = ratio(Router::Uniform);
    println!("uniform: regret(4000)/regret(1000) = {uniform:.3}, mean regret {uniform_regret:.1}");
    assert!((uniform - 4.0).abs() < 0.3, "uniform ratio {uniform:.3}");
    for policy in [Policy::Ucb1, Policy::Thompson] {
        let (r, regret) = ratio(Router::Policy(policy));
        println!("{policy}: regret(4000)/regret(1000) = {r:.3}, mean regret {regret:.1}");
        assert!(r < 2.5, "{policy} ratio {r:.3}");
        assert!(
            r < uniform - 1.0,
            "{policy} ratio {r:.3} vs uniform {uniform:.3}"
        );
        assert!(regret < uniform_regret / 4.0, "{policy} regret {regret:.1}");
    }
}

#[test]
fn per_cluster_preference_is_learned() {
    // True means per cluster (rows) and arm (columns): cluster A prefers arm 0, B prefers arm 1.
    let truth = [[0.5, 0.2, 0.1], [0.15, 0.55, 0.1]];
    let params = PolicyParams::default();
    for policy in [Policy::Ucb1, Policy::Thompson] {
        for seed in [21, 22, 23] {
            let mut policy_rng = StdRng::seed_from_u64(seed);
            let mut env_rng = StdRng::seed_from_u64(seed + 1000);
            let mut cluster_accs = [[Acc::default(); 3]; 2];
            let mut table_accs = [Acc::default(); 3];
            let mut choices: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
            for q in 0..2000 {
                let c = q % 2;
                let arms: Vec<Arm> = (0..3)
                    .map(|i| Arm {
                        id: format!("L{i}"),
                        cluster: cluster_accs[c][i].stats(),
                        table: table_accs[i].stats(),
                    })
                    .collect();
                let arm = choose(policy, &arms, &params, &mut policy_rng).unwrap().arm;
                let r = reward(truth[c][arm], &mut env_rng);
                cluster_accs[c][arm].push(r);
                table_accs[arm].push(r);
                choices[c].push(arm);
            }
            for (c, own_best) in [(0, 0), (1, 1)] {
                let s = share(&choices[c][500..], own_best);
                println!("{policy} seed {seed} cluster {c}: own-best share of last 500 = {s:.3}");
                assert!(s > 0.70, "{policy} seed {seed} cluster {c}: share {s:.3}");
            }
        }
    }
}

#[test]
fn new_cluster_routes_by_table_wide_figures() {
    // Table-wide history says arm 2 is best; a fresh cluster (no stats) should exploit it first.
    let truth = [0.0, 0.2, 0.4];
    let mut env_rng = StdRng::seed_from_u64(77);
    let mut table = [Acc::default(); 3];
    for _ in 0..200 {
        for (i, m) in truth.iter().enumerate() {
            table[i].push(reward(*m, &mut env_rng));
        }
    }
    let arms: Vec<Arm> = (0..3)
        .map(|i| Arm {
            id: format!("L{i}"),
            cluster: RewardStats::default(),
            table: table[i].stats(),
        })
        .collect();
    let params = PolicyParams {
        exploration_rate: 0.0,
        ..Default::default()
    };
    let mut rng = StdRng::seed_from_u64(78);
    let d = choose(Policy::EpsilonGreedy, &arms, &params, &mut rng).unwrap();
    assert_eq!((d.best, d.arm, d.explored), (2, 2, false));
    for (i, a) in arms.iter().enumerate() {
        let e = dbopt_route::effective(a, &params);
        assert_eq!(e.n, 2);
        assert_eq!(e.mean, table[i].stats().mean);
    }
    // UCB1 has every arm "tried" through the prior, so it does not force the baseline first.
    let d = choose(Policy::Ucb1, &arms, &params, &mut rng).unwrap();
    assert!(!d.reason.contains("never tried"), "{}", d.reason);
    // Equal pseudo-counts give equal bonuses, so the table-wide best wins.
    assert_eq!(d.arm, 2);
}
