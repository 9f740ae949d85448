//! `visage`: face recognition from the command line.
//!
//! Exit codes: 0 success (or "same person"), 1 "not the same person / not recognised",
//! 2 an error (bad input, missing model, ...), 3 a face judged not live (a spoof, or with
//! `--liveness` one that cannot be judged). Errors always name the file concerned.

mod args;
mod cmd;
mod context;
mod draw;
mod inputs;
mod output;

use clap::{Parser, Subcommand};
use context::{GalleryOpt, PhotoOpts, TopOpts};
use std::process::ExitCode;

/// Face recognition: detect, align, embed, compare.
#[derive(Parser)]
#[command(name = "visage", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: TopOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download, verify and list the dlib model files.
    #[command(subcommand)]
    Models(cmd::models::ModelsCommand),
    /// Find faces and their landmarks in photos (JSON lines).
    ///
    /// One JSON object per photo: {"path", "width", "height", "faces"}. Per face, "box" is the
    /// face rectangle [left, top, right, bottom] in pixels (inclusive), trimmed to the photo:
    /// the rectangle the landmarks are computed in and that other commands print. "detection"
    /// is the detector's raw rectangle in the same format, which may extend past the photo's
    /// edges. "landmarks" are 5 [x, y] points, "score" the detector's confidence.
    Detect(cmd::detect::DetectArgs),
    /// Print the embedding of every face in photos (128 numbers with dlib's model), or of aligned chips with --chip (JSON lines).
    ///
    /// Faces are printed as by `visage detect` (box and detection are [left, top, right,
    /// bottom]), each with its "embedding".
    Embed(cmd::embed::EmbedArgs),
    /// Compare the largest faces of two photos: distance, threshold, same person or not.
    Compare(cmd::compare::CompareArgs),
    /// Enroll a person from one or more photos (one is enough).
    Enroll(cmd::gallery::EnrollArgs),
    /// Enroll everyone in a folder with one sub-folder of photos per person.
    EnrollDir(cmd::gallery::EnrollDirArgs),
    /// List, rename or remove enrolled people.
    Subjects(SubjectsArgs),
    /// Delete every template of a person (for privacy requests).
    Forget {
        /// The person's name.
        name: String,
        #[command(flatten)]
        gallery_opt: GalleryOpt,
    },
    /// 1:1 -- is the person in the photo who they claim to be? Exit 0 match, 1 no match.
    Verify(cmd::gallery::VerifyArgs),
    /// 1:N -- who is each face in these photos? The nearest enrolled person, or no match.
    ///
    /// Each face prints as `photo face i [left,top,right,bottom]: name (distance d < t)`, or
    /// `no match` with the nearest person when nobody is closer than the threshold. Numbers
    /// after names are distances: lower is closer. With --json, each face has "decision"
    /// ("match" or "unknown"), "name" (null when unknown), "nearest", "distance", "threshold"
    /// and "candidates" (nearest first).
    Identify(cmd::gallery::IdentifyArgs),
    /// face_recognition's `face_recognition KNOWN UNKNOWN`: prints file,name per face.
    Recognize(cmd::recognize::RecognizeArgs),
    /// Measure genuine/impostor distances and recommend a threshold for a target FAR.
    Calibrate(cmd::gallery::CalibrateArgs),
    /// Show the gallery's file, contract, threshold and size.
    Gallery(GalleryOpt),
    /// Measure verification accuracy: LFW's 10-fold protocol, or your own labelled pairs.
    Eval(EvalArgs),
    /// Is each face live or a photo of a photo? Exit 0 when every face is live, 3 otherwise.
    ///
    /// Each face prints as `photo face i [left,top,right,bottom]: live (score s > t)`,
    /// `spoof (score s <= t)` or `cannot judge: REASON` (face too small, cut by the border,
    /// badly exposed, greyscale). `visage liveness train` and `visage liveness eval` train and
    /// measure a model on a data set laid out as NUAA (see the README).
    Liveness(cmd::liveness::LivenessArgs),
    /// Serve the HTTP API (see the README): tenants' galleries, identify, verify, compare,
    /// detect, liveness, with API keys from `visage keys`.
    Serve(cmd::serve::ServeArgs),
    /// Create, list and revoke the API keys of `visage serve`.
    #[command(subcommand)]
    Keys(cmd::serve::KeysCommand),
    /// Train: a Siamese head on the model's embeddings (`visage train head`).
    #[cfg(feature = "train")]
    Train(TrainArgs),
    /// Train (this build has no training: build with `--features train`).
    #[cfg(not(feature = "train"))]
    #[command(hide = true)]
    Train {
        /// Ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `visage train`: the photo options, then what to train.
#[cfg(feature = "train")]
#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    photo_opts: PhotoOpts,
    #[command(subcommand)]
    command: cmd::train::TrainCommand,
}

/// `visage subjects`: the gallery option, then the sub-command.
#[derive(clap::Args)]
struct SubjectsArgs {
    #[command(flatten)]
    gallery_opt: GalleryOpt,
    #[command(subcommand)]
    command: cmd::gallery::SubjectsCommand,
}

/// `visage eval`: the photo options, then the evaluation.
#[derive(clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    photo_opts: PhotoOpts,
    #[command(subcommand)]
    command: cmd::eval::EvalCommand,
}

/// What a command reports back to `main`.
pub enum Outcome {
    /// Everything succeeded (exit 0).
    Ok,
    /// The answer is "no" (different person, unknown face): exit 1.
    No,
    /// Some inputs failed but the command went on (exit 2).
    PartialFailure,
    /// A face was judged not live (exit 3).
    Spoof,
}

impl Command {
    /// Whether the command prints JSON on stdout (then a failure also prints one JSON error
    /// object there, besides the message on stderr).
    fn json(&self) -> bool {
        match self {
            Command::Detect(_) | Command::Embed(_) => true,
            Command::Compare(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Identify(a) => a.json,
            Command::Calibrate(a) => a.json,
            Command::Subjects(SubjectsArgs { command: cmd::gallery::SubjectsCommand::List { json }, .. }) => *json,
            Command::Eval(e) => e.command.json(),
            Command::Liveness(a) => a.json(),
            _ => false,
        }
    }
}

/// Reports a failed command: one sentence on stderr and, in JSON mode, `{"error": ...}` on stdout.
fn fail(e: &anyhow::Error, json: bool) -> ExitCode {
    let msg = output::error_text(e);
    eprintln!("visage: {msg}");
    if json {
        output::json_line(&serde_json::json!({ "error": msg }));
    }
    ExitCode::from(2)
}

/// Parses the arguments; a refusal follows the convention of every other error: the message
/// on stderr and, with `--json`, one JSON error object on stdout (help and version print as usual).
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            if std::env::args_os().any(|a| a == "--json") {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                output::json_line(&serde_json::json!({ "error": first.strip_prefix("error: ").unwrap_or(first) }));
            }
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let top = &cli.global;
    top.with(None, None).init_logging();
    let json = cli.command.json();
    if let Err(e) = top.with(None, None).init_threads() {
        return fail(&e, json);
    }
    // Each command gets the options of its kind: photo options, the gallery, or neither.
    let result = match cli.command {
        Command::Models(c) => cmd::models::run(&top.with(None, None), c),
        Command::Detect(a) => cmd::detect::run(&top.with(Some(&a.photo_opts), None), a),
        Command::Embed(a) => cmd::embed::run(&top.with(Some(&a.photo_opts), None), a),
        Command::Compare(a) => cmd::compare::run(&top.with(Some(&a.photo_opts), None), a),
        Command::Enroll(a) => cmd::gallery::enroll(&top.with(Some(&a.photo_opts), Some(&a.gallery_opt)), a),
        Command::EnrollDir(a) => cmd::gallery::enroll_dir(&top.with(Some(&a.photo_opts), Some(&a.gallery_opt)), a),
        Command::Subjects(s) => cmd::gallery::subjects(&top.with(None, Some(&s.gallery_opt)), s.command),
        Command::Forget { name, gallery_opt } => cmd::gallery::forget(&top.with(None, Some(&gallery_opt)), &name),
        Command::Verify(a) => cmd::gallery::verify(&top.with(Some(&a.photo_opts), Some(&a.gallery_opt)), a),
        Command::Identify(a) => cmd::gallery::identify(&top.with(Some(&a.photo_opts), Some(&a.gallery_opt)), a),
        Command::Recognize(a) => cmd::recognize::run(&top.with(Some(&a.photo_opts), None), a),
        Command::Calibrate(a) => cmd::gallery::calibrate_cmd(&top.with(Some(&a.photo_opts), Some(&a.gallery_opt)), a),
        Command::Gallery(o) => cmd::gallery::info(&top.with(None, Some(&o))),
        Command::Eval(e) => cmd::eval::run(&top.with(Some(&e.photo_opts), None), e.command),
        Command::Liveness(a) => cmd::liveness::run(&top.with(Some(a.photo_opts()), None), a),
        Command::Serve(a) => cmd::serve::serve(&top.with(Some(&a.photo_opts), None), a),
        Command::Keys(c) => cmd::serve::keys(c),
        #[cfg(feature = "train")]
        Command::Train(a) => cmd::train::run(&top.with(Some(&a.photo_opts), None), a.command),
        #[cfg(not(feature = "train"))]
        Command::Train { .. } => Err(anyhow::anyhow!(
            "this visage was built without training; build it with `cargo build --release -p visage-cli --features train`"
        )),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::No) => ExitCode::from(1),
        Ok(Outcome::PartialFailure) => ExitCode::from(2),
        Ok(Outcome::Spoof) => ExitCode::from(3),
        Err(e) => fail(&e, json),
    }
}
