//! The recipes of the README's sharding section that no scheduler is needed to check here: the Kubernetes Job's
//! command line, and the Slurm batch script under a job array's environment. (The real Slurm and
//! GNU parallel runs are deploy/slurm/ci.sh and deploy/parallel/ci.sh, called from .ci/run.)

use super::*;

/// The value of the first `key: [...]` line of deploy/k8s/job.yaml, a one-line JSON-style list.
fn yaml_list(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{key}:` line in job.yaml"));
    serde_json::from_str(line[prefix.len()..].trim()).expect("a one-line list, as JSON")
}

/// The integer after `key:` in job.yaml.
fn yaml_number(text: &str, key: &str) -> u64 {
    let prefix = format!("{key}:");
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .expect(key);
    line[prefix.len()..].trim().parse().expect("a number")
}

#[test]
fn the_kubernetes_job_runs_shard_k_plus_one_of_its_completion_index() {
    let yaml = common::read(&common::root().join("deploy").join("k8s").join("job.yaml"));
    assert!(yaml.contains("completionMode: Indexed"));
    assert_eq!(yaml_list(&yaml, "command"), ["d11sim"]);
    let args = yaml_list(&yaml, "args");
    let n = yaml_number(&yaml, "completions");
    assert_eq!(n, yaml_number(&yaml, "parallelism"));
    let shard = args.iter().position(|a| a == "--shard").expect("--shard");
    assert_eq!(args[shard + 1], format!("auto/{n}"));
    // As the pod of index 1 runs it: the scenario from the ConfigMap, /results a temp folder,
    // $(JOB_COMPLETION_INDEX) expanded by Kubernetes.
    let tmp = tempfile::tempdir().expect("temp dir");
    let results = tmp.path().display().to_string();
    let local: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            "/scenario/scenario.toml" => common::data("tiny.toml").display().to_string(),
            _ => a
                .replace("/results", &results)
                .replace("$(JOB_COMPLETION_INDEX)", "1"),
        })
        .collect();
    let o = common::d11sim()
        .args(&local)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .expect("d11sim runs");
    expect_code(&o, 0, "the Job's command line");
    let m = manifest(&tmp.path().join("shard-1"));
    assert_eq!(m["shard"], format!("2/{n}"));
}

#[test]
fn the_slurm_batch_script_runs_each_array_task_as_its_shard() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let script = common::root()
        .join("deploy")
        .join("slurm")
        .join("shards.sbatch");
    let bin = env!("CARGO_BIN_EXE_d11sim");
    for task in 0..3 {
        let o = std::process::Command::new("bash")
            .arg(&script)
            .arg(common::data("tiny.toml"))
            .arg(tmp.path().join("shards"))
            .args([
                "--replications",
                REPLICATIONS,
                "--no-charts",
                "--engine",
                "agents",
            ])
            .env("D11SIM", bin)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env_remove("JOB_COMPLETION_INDEX")
            .output()
            .expect("bash runs");
        expect_code(&o, 0, &format!("array task {task}"));
    }
    let parts: Vec<PathBuf> = (0..3)
        .map(|k| tmp.path().join("shards").join(format!("shard-{k}")))
        .collect();
    let merged = tmp.path().join("merged");
    expect_code(&merge(&parts, &merged, &[]), 0, "merge");
    let whole = tmp.path().join("whole");
    expect_code(&run_tiny(&whole, &[]), 0, "unsharded run");
    assert_same_csvs(&merged, &whole);
}
