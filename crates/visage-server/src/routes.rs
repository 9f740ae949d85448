//! The `/v1` handlers. Each authenticates, checks its scope, reads the photos, and does the
//! photo work on the worker pool.

use crate::auth::Caller;
use crate::keys::Scope;
use crate::photo::{self, Form};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use visage::{Face, FaceChoice, FaceEmbedding, RgbImage};
use visage_core::Metric;
use crate::backend::TenantGallery;
use visage_gallery::{EnrollOutcome, NewTemplate};
use visage_liveness::Verdict;

type S = State<Arc<AppState>>;

/// A face as JSON: box `[left, top, right, bottom]` (inclusive), score, detector, landmarks.
pub fn face_json(f: &Face) -> Value {
    let r = f.rect;
    json!({
        "box": [r.left, r.top, r.right, r.bottom],
        "score": f.score,
        "detector": f.detector.name,
        "landmarks": f.landmarks.iter().map(|p| [p.x, p.y]).collect::<Vec<_>>(),
    })
}

fn decode(state: &AppState, bytes: &[u8], field: &str) -> Result<RgbImage, ApiError> {
    Ok(state.visage.decode_image(bytes, field).map_err(visage::VisageError::from)?)
}

/// A validated optional number field: `threshold` finite and >= 0.
fn threshold(form: &Form) -> Result<Option<f64>, ApiError> {
    match form.fields.get("threshold") {
        None => Ok(None),
        Some(t) => match t.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(ApiError::bad_request(format!("threshold {t:?} must be a finite number >= 0"))),
        },
    }
}

fn flag(form: &Form, name: &str) -> Result<bool, ApiError> {
    match form.fields.get(name).map(|s| s.trim()) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("{name} {other:?} must be true or false"))),
    }
}

fn top_k(form: &Form) -> Result<usize, ApiError> {
    match form.fields.get("top") {
        None => Ok(1),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(k) if (1..=100).contains(&k) => Ok(k),
            _ => Err(ApiError::bad_request(format!("top {t:?} must be a whole number from 1 to 100"))),
        },
    }
}

/// The face's liveness verdict, and its JSON.
fn liveness_json(state: &AppState, img: &RgbImage, f: &Face) -> (Verdict, Value) {
    let j = state.liveness.judge(img, f.detection, &f.landmarks, None);
    (j.verdict, json!({"verdict": j.verdict.word(), "score": j.score, "threshold": j.threshold, "reason": j.reason.map(|r| r.reason())}))
}

/// An embedding given in place of a photo (field `embedding`: a JSON array of numbers, as
/// `visage embed` prints them), checked against the gallery's dimension; `None` when the
/// request has no such field.
fn given_embedding(form: &Form, gal: &TenantGallery) -> Result<Option<Vec<f32>>, ApiError> {
    let Some(text) = form.fields.get("embedding") else { return Ok(None) };
    if form.photos.contains_key("image") {
        return Err(ApiError::bad_request("send a photo (image) or an embedding, not both"));
    }
    let v: Vec<f64> = serde_json::from_str(text)
        .map_err(|_| ApiError::bad_request("embedding must be a JSON array of numbers (as `visage embed` prints them)"))?;
    let dim = gal.contract().dim;
    if v.len() != dim {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_dimension",
            format!("the embedding has {} numbers; this gallery's model ({}) makes {dim}", v.len(), gal.contract().model),
        ));
    }
    if v.iter().any(|x| !x.is_finite() || x.abs() > f32::MAX as f64) {
        return Err(ApiError::bad_request("embedding holds a value that is not a finite number"));
    }
    if form.fields.contains_key("liveness") {
        return Err(ApiError::bad_request("liveness is judged on a photo: it cannot be asked for an embedding"));
    }
    Ok(Some(v.into_iter().map(|x| x as f32).collect()))
}

/// The gallery's threshold, or the request's.
fn threshold_of(gal: &TenantGallery, given: Option<f64>) -> Result<f64, ApiError> {
    match given {
        Some(t) => Ok(t),
        None => gal.threshold(),
    }
}

/// The candidates and decision of one embedding.
fn identified(gal: &TenantGallery, e: &[f32], top: usize, t: f64) -> Result<Value, ApiError> {
    decided(gal.search(e, top)?, t)
}

/// The decision on `cands` (nearest first) at threshold `t`.
fn decided(cands: Vec<visage_gallery::Match>, t: f64) -> Result<Value, ApiError> {
    let best = cands.first().filter(|m| (m.distance as f64) < t);
    Ok(json!({
        "decision": if best.is_some() { "match" } else { "unknown" },
        "name": best.map(|m| m.name.clone()),
        "threshold": t,
        "candidates": cands.iter().map(|m| json!({"name": m.name, "distance": m.distance})).collect::<Vec<_>>(),
    }))
}

/// The one face a request means: the largest, or `face` (index) when given; 422 without one.
fn one_face(state: &AppState, img: &RgbImage, form: &Form, several_ok: bool) -> Result<FaceEmbedding, ApiError> {
    let faces = state.visage.analyze(img)?;
    let choice = match form.fields.get("face") {
        Some(i) => {
            FaceChoice::Index(i.trim().parse().map_err(|_| ApiError::bad_request(format!("face {i:?} must be a face index from 0")))?)
        }
        None => FaceChoice::Largest,
    };
    if faces.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_face", "no face found in the photo"));
    }
    if faces.len() > 1 && !several_ok && !form.fields.contains_key("face") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "several_faces",
            format!("{} faces found; choose one with the field face=N (from 0, in detection order)", faces.len()),
        ));
    }
    let plain: Vec<Face> = faces.iter().map(|f| f.face.clone()).collect();
    let i = choice.pick(&plain, img.width(), img.height()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_face",
            format!("the photo has {} faces; there is no face {:?}", faces.len(), form.fields.get("face")),
        )
    })?;
    Ok(faces.into_iter().nth(i).expect("picked index is in range"))
}

/// Appends to the audit log off the async executor (the write waits for the disk); the
/// answer goes out only once it is written.
async fn audit(
    st: &Arc<AppState>,
    c: &Caller,
    action: &'static str,
    gallery: Option<&str>,
    subject: Option<&str>,
    detail: &str,
) -> Result<(), ApiError> {
    audit_all(st, c, vec![(action, gallery.map(String::from), subject.map(String::from), detail.to_string())]).await
}

/// [`audit`] for several entries at once.
async fn audit_all(
    st: &Arc<AppState>,
    c: &Caller,
    entries: Vec<(&'static str, Option<String>, Option<String>, String)>,
) -> Result<(), ApiError> {
    let (st, key) = (st.clone(), c.0.clone());
    tokio::task::spawn_blocking(move || {
        for (action, g, s, detail) in entries {
            st.keys.audit(&key, action, g.as_deref(), s.as_deref(), &detail).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

// ---- galleries ----

/// `GET /v1/galleries`: the tenant's galleries, with their model, metric, threshold and sizes.
#[utoipa::path(get, path = "/v1/galleries", tag = "galleries", responses((status = 200, body = crate::openapi::GalleryList)))]
pub async fn list_galleries(State(st): S, c: Caller) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let tenant = c.tenant().to_string();
    let st2 = st.clone();
    let list = st
        .pool
        .run(move || {
            st2.gallery_names(&tenant)?
                .into_iter()
                .map(|n| {
                    let g = st2.gallery(&tenant, &n)?;
                    let (subjects, templates) = g.counts()?;
                    Ok(json!({"name": n, "model": g.contract().model, "metric": g.contract().metric.name(), "threshold": g.threshold()?, "subjects": subjects, "templates": templates}))
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(Json(json!({ "galleries": list })))
}

/// The body of `POST /v1/galleries`.
#[derive(Deserialize)]
pub struct NewGallery {
    name: String,
    #[serde(default)]
    metric: Option<String>,
}

/// `POST /v1/galleries` `{"name", "metric"}`: a new gallery bound to the model and the metric
/// (`l2` by default).
#[utoipa::path(post, path = "/v1/galleries", tag = "galleries", request_body = crate::openapi::NewGallery, responses((status = 201, body = crate::openapi::GalleryInfo)))]
pub async fn create_gallery(
    State(st): S,
    c: Caller,
    body: Result<Json<NewGallery>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    c.require(Scope::Admin)?;
    let Json(b) = body.map_err(|e| {
        ApiError::bad_request(format!("the body must be JSON {{\"name\": ..., \"metric\": \"l2\"|\"cosine\"|\"chi2\"}}: {e}"))
    })?;
    let metric = match b.metric.as_deref() {
        None => Metric::L2,
        Some(m) => m.parse::<Metric>().map_err(|_| ApiError::bad_request(format!("metric {m:?} must be l2, cosine or chi2")))?,
    };
    let (tenant, name) = (c.tenant().to_string(), b.name.clone());
    let st2 = st.clone();
    let (g, threshold) = st
        .pool
        .run(move || {
            let g = st2.create_gallery(&tenant, &name, metric)?;
            let t = g.threshold()?;
            Ok((g, t))
        })
        .await?;
    audit(&st, &c, "create_gallery", Some(&b.name), None, metric.name()).await?;
    Ok((StatusCode::CREATED, Json(json!({"name": b.name, "model": g.contract().model, "metric": metric.name(), "threshold": threshold}))))
}

/// `DELETE /v1/galleries/{g}`: the gallery and its files.
#[utoipa::path(delete, path = "/v1/galleries/{g}", tag = "galleries", params(("g" = String, Path, description = "gallery name")), responses((status = 204, description = "deleted with its files")))]
pub async fn delete_gallery(State(st): S, c: Caller, Path(g): Path<String>) -> Result<StatusCode, ApiError> {
    c.require(Scope::Admin)?;
    let (tenant, name) = (c.tenant().to_string(), g.clone());
    let st2 = st.clone();
    st.pool.run(move || st2.delete_gallery(&tenant, &name)).await?;
    audit(&st, &c, "delete_gallery", Some(&g), None, "").await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- subjects ----

/// `GET /v1/galleries/{g}/subjects`: the people enrolled, by name, with their face counts.
#[utoipa::path(get, path = "/v1/galleries/{g}/subjects", tag = "subjects", params(("g" = String, Path, description = "gallery name")), responses((status = 200, body = crate::openapi::SubjectList)))]
pub async fn list_subjects(State(st): S, c: Caller, Path(g): Path<String>) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let subjects = st.pool.run(move || gal.subjects()).await?;
    Ok(Json(
        json!({"subjects": subjects.iter().map(|s| json!({"name": s.name, "templates": s.templates, "created_at": s.created_at})).collect::<Vec<_>>()}),
    ))
}

/// The body of `PATCH /v1/galleries/{g}/subjects/{s}`.
#[derive(Deserialize)]
pub struct Rename {
    name: String,
}

/// `PATCH /v1/galleries/{g}/subjects/{s}` `{"name": new}`: rename.
#[utoipa::path(patch, path = "/v1/galleries/{g}/subjects/{s}", tag = "subjects", params(("g" = String, Path, description = "gallery name"), ("s" = String, Path, description = "person's name")), request_body = crate::openapi::Rename, responses((status = 200, body = crate::openapi::Renamed)))]
pub async fn rename_subject(
    State(st): S,
    c: Caller,
    Path((g, s)): Path<(String, String)>,
    body: Result<Json<Rename>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Enroll)?;
    let Json(r) = body.map_err(|e| ApiError::bad_request(format!("the body must be JSON {{\"name\": new name}}: {e}")))?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let (old, new) = (s.clone(), r.name.clone());
    st.pool.run(move || gal.rename(&old, &new)).await?;
    audit(&st, &c, "rename_subject", Some(&g), Some(&s), &r.name).await?;
    Ok(Json(json!({"name": r.name})))
}

/// `DELETE /v1/galleries/{g}/subjects/{s}`: forget every template of the person.
#[utoipa::path(delete, path = "/v1/galleries/{g}/subjects/{s}", tag = "subjects", params(("g" = String, Path, description = "gallery name"), ("s" = String, Path, description = "person's name")), responses((status = 200, body = crate::openapi::Forgotten)))]
pub async fn delete_subject(State(st): S, c: Caller, Path((g, s)): Path<(String, String)>) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Enroll)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let name = s.clone();
    let out = st.pool.run(move || gal.forget(&name)).await?;
    audit(&st, &c, "forget", Some(&g), Some(&s), &format!("{} templates", out.templates)).await?;
    Ok(Json(json!({"forgotten": s, "templates": out.templates, "erased": out.erased})))
}

/// Enrolls the face of one photo for `name` (on a pool thread): the outcome, the face, and
/// the stored face's id.
fn enroll_one(st: &AppState, gal: &TenantGallery, name: &str, bytes: &[u8], form: &Form) -> Result<(EnrollOutcome, Face, Option<i64>), ApiError> {
    let img = decode(st, bytes, "image")?;
    let f = one_face(st, &img, form, false)?;
    let r = f.face.rect;
    let t = NewTemplate {
        embedding: f.embedding.clone(),
        photo_sha256: format!("{:x}", Sha256::digest(bytes)),
        face_box: [r.left, r.top, r.right, r.bottom],
        source: Some("api".into()),
    };
    let out = gal.enroll(name, std::slice::from_ref(&t))?;
    let id = gal.face_id(name, &t)?;
    Ok((out, f.face, id))
}

/// `POST /v1/galleries/{g}/subjects/{s}/faces` (photo `image`; `face=N` in a photo of several):
/// one-shot enrollment, creating the person on their first face.
#[utoipa::path(post, path = "/v1/galleries/{g}/subjects/{s}/faces", tag = "subjects", params(("g" = String, Path, description = "gallery name"), ("s" = String, Path, description = "person's name")), request_body(content((crate::openapi::PhotoForm = "multipart/form-data"), (crate::openapi::PhotoJson = "application/json"))), responses((status = 201, description = "a face added", body = crate::openapi::Enrolled), (status = 200, description = "this face of this photo was already enrolled", body = crate::openapi::Enrolled)))]
pub async fn enroll(State(st): S, c: Caller, Path((g, s)): Path<(String, String)>, req: Request) -> Result<impl IntoResponse, ApiError> {
    c.require(Scope::Enroll)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let form = photo::read(req, &["image"], st.config.max_body).await?;
    if let Some(e) = given_embedding(&form, &gal)? {
        // Idempotent like a photo: keyed by the embedding's own hash (no box: no photo).
        let mut h = Sha256::new();
        e.iter().for_each(|x| h.update(x.to_le_bytes()));
        let t = NewTemplate { embedding: e, photo_sha256: format!("embedding:{:x}", h.finalize()), face_box: [0; 4], source: Some("api-embedding".into()) };
        let name = s.clone();
        let (out, id) = st
            .pool
            .run(move || {
                let out = gal.enroll(&name, std::slice::from_ref(&t))?;
                let id = gal.face_id(&name, &t)?;
                Ok((out, id))
            })
            .await?;
        audit(&st, &c, "enroll", Some(&g), Some(&s), &format!("{} added (embedding)", out.added)).await?;
        let status = if out.added > 0 { StatusCode::CREATED } else { StatusCode::OK };
        return Ok((status, Json(json!({"subject": s, "added": out.added, "already_enrolled": out.already, "face_id": id, "face": null}))));
    }
    let bytes = form.photo("image")?;
    let (st2, name) = (st.clone(), s.clone());
    let (out, f, id) = st.pool.run(move || enroll_one(&st2, &gal, &name, &bytes, &form)).await?;
    audit(&st, &c, "enroll", Some(&g), Some(&s), &format!("{} added", out.added)).await?;
    let status = if out.added > 0 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"subject": s, "added": out.added, "already_enrolled": out.already, "face_id": id, "face": face_json(&f)}))))
}

/// `POST /v1/galleries/{g}/faces`: batch enrollment. Each photo is enrolled on its own (its
/// own transaction) and answered on its own, in order: a bad photo fails only itself.
#[utoipa::path(post, path = "/v1/galleries/{g}/faces", tag = "subjects", params(("g" = String, Path, description = "gallery name")), request_body(content((crate::openapi::BatchForm = "multipart/form-data"), (crate::openapi::BatchJson = "application/json"))), responses((status = 200, description = "every photo's own result", body = crate::openapi::BatchResults)))]
pub async fn enroll_batch(State(st): S, c: Caller, Path(g): Path<String>, req: Request) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Enroll)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let items = photo::read_batch(req, st.config.max_body).await?;
    let st2 = st.clone();
    let done = st
        .pool
        .run(move || {
            Ok(items
                .into_iter()
                .map(|it| {
                    let mut form = Form::default();
                    if let Some(f) = it.face {
                        form.fields.insert("face".into(), f);
                    }
                    let r = enroll_one(&st2, &gal, &it.subject, &it.image, &form);
                    (it.subject, r)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut results = Vec::with_capacity(done.len());
    let mut log = Vec::new();
    for (i, (subject, r)) in done.into_iter().enumerate() {
        match r {
            Ok((out, f, id)) => {
                ok += 1;
                log.push(("enroll", Some(g.clone()), Some(subject.clone()), format!("{} added (batch)", out.added)));
                let status = if out.added > 0 { 201 } else { 200 };
                results.push(json!({"index": i, "subject": subject, "status": status, "added": out.added, "already_enrolled": out.already, "face_id": id, "face": face_json(&f)}));
            }
            Err(e) => {
                failed += 1;
                results.push(
                    json!({"index": i, "subject": subject, "status": e.status.as_u16(), "error": {"code": e.code, "detail": e.detail}}),
                );
            }
        }
    }
    audit_all(&st, &c, log).await?;
    Ok(Json(json!({"enrolled": ok, "failed": failed, "results": results})))
}

/// `GET /v1/galleries/{g}/subjects/{s}/faces`: the person's faces (ids, photo hashes, boxes).
#[utoipa::path(get, path = "/v1/galleries/{g}/subjects/{s}/faces", tag = "subjects", params(("g" = String, Path, description = "gallery name"), ("s" = String, Path, description = "person's name")), responses((status = 200, body = crate::openapi::FaceList)))]
pub async fn list_faces(State(st): S, c: Caller, Path((g, s)): Path<(String, String)>) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let name = s.clone();
    let faces = st.pool.run(move || gal.faces(&name)).await?;
    Ok(Json(json!({"subject": s, "faces": faces.iter().map(|f| json!({
        "id": f.id, "photo_sha256": f.photo_sha256, "box": f.face_box, "source": f.source, "created_at": f.created_at,
    })).collect::<Vec<_>>()})))
}

/// `DELETE /v1/galleries/{g}/subjects/{s}/faces/{face_id}`: forget one face of the person
/// (erased as a whole person's are); the person stays enrolled.
#[utoipa::path(delete, path = "/v1/galleries/{g}/subjects/{s}/faces/{face_id}", tag = "subjects", params(("g" = String, Path, description = "gallery name"), ("s" = String, Path, description = "person's name"), ("face_id" = i64, Path, description = "face id (from the person's faces)")), responses((status = 200, body = crate::openapi::FaceDeleted)))]
pub async fn delete_face(State(st): S, c: Caller, Path((g, s, id)): Path<(String, String, String)>) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Enroll)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let face_id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("face id {id:?} must be a whole number")))?;
    let name = s.clone();
    let out = st.pool.run(move || gal.forget_face(&name, face_id)).await?;
    let Some(out) = out else {
        return Err(ApiError::not_found("face_not_found", format!("{s:?} has no face {face_id}")));
    };
    audit(&st, &c, "forget_face", Some(&g), Some(&s), &format!("face {face_id}")).await?;
    Ok(Json(json!({"subject": s, "deleted": face_id, "erased": out.erased})))
}

// ---- recognition ----

/// `POST /v1/galleries/{g}/identify` (photo `image`; `top`, `threshold`, `liveness`): every
/// face with its candidates and the decision `match` or `unknown` (`spoof` / `cannot_judge`
/// with `liveness=true`).
#[utoipa::path(post, path = "/v1/galleries/{g}/identify", tag = "recognition", params(("g" = String, Path, description = "gallery name")), request_body(content((crate::openapi::PhotoForm = "multipart/form-data"), (crate::openapi::PhotoJson = "application/json"))), responses((status = 200, body = crate::openapi::Identified)))]
pub async fn identify(State(st): S, c: Caller, Path(g): Path<String>, req: Request) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let form = photo::read(req, &["image"], st.config.max_body).await?;
    let (top, given, live_check) = (top_k(&form)?, threshold(&form)?, flag(&form, "liveness")?);
    if let Some(e) = given_embedding(&form, &gal)? {
        // The threshold is read while the gallery is searched (two round trips to Milvus at
        // once rather than one after the other; nothing to wait for in SQLite).
        let face = st
            .pool
            .run(move || {
                let (t, cands) = rayon::join(|| threshold_of(&gal, given), || gal.search(&e, top));
                decided(cands?, t?)
            })
            .await?;
        return Ok(Json(json!({ "faces": [face] })));
    }
    let bytes = form.photo("image")?;
    let st2 = st.clone();
    let faces = st
        .pool
        .run(move || {
            // The threshold is read while the photo is analysed.
            let (t, analysed) = rayon::join(
                || threshold_of(&gal, given),
                || -> Result<_, ApiError> {
                    let img = decode(&st2, &bytes, "image")?;
                    let faces = st2.visage.analyze(&img)?;
                    Ok((img, faces))
                },
            );
            let (img, faces) = analysed?;
            let t = t?;
            faces
                .into_iter()
                .map(|f| {
                    let mut out = face_json(&f.face);
                    if live_check {
                        let (verdict, j) = liveness_json(&st2, &img, &f.face);
                        out["liveness"] = j;
                        if let Some(d) = verdict.refusal() {
                            out["decision"] = json!(d);
                            out["name"] = Value::Null;
                            out["threshold"] = json!(t);
                            out["candidates"] = json!([]);
                            return Ok(out);
                        }
                    }
                    let decided = identified(&gal, &f.embedding, top, t)?;
                    out.as_object_mut().expect("a face is an object").extend(decided.as_object().expect("an object").clone());
                    Ok(out)
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(Json(json!({ "faces": faces })))
}

/// `POST /v1/galleries/{g}/subjects/{s}/verify` (photo `image`, its largest face or `face=N`;
/// `threshold`, `liveness`).
#[utoipa::path(post, path = "/v1/galleries/{g}/subjects/{s}/verify", tag = "recognition", params(("g" = String, Path, description = "gallery name"), ("s" = String, Path, description = "person's name")), request_body(content((crate::openapi::PhotoForm = "multipart/form-data"), (crate::openapi::PhotoJson = "application/json"))), responses((status = 200, body = crate::openapi::Verified)))]
pub async fn verify(State(st): S, c: Caller, Path((g, s)): Path<(String, String)>, req: Request) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let gal = st.gallery_async(c.tenant(), &g).await?;
    let form = photo::read(req, &["image"], st.config.max_body).await?;
    let (given, live_check) = (threshold(&form)?, flag(&form, "liveness")?);
    let embedding = given_embedding(&form, &gal)?;
    let bytes = if embedding.is_some() { Default::default() } else { form.photo("image")? };
    let st2 = st.clone();
    st.pool
        .run(move || {
            // The threshold and the name are looked up at once; an unknown name is refused
            // before the photo work.
            let (t, known) = rayon::join(|| threshold_of(&gal, given), || gal.has_subject(&s));
            let t = t?;
            if !known? {
                return Err(ApiError::not_found("subject_not_found", format!("no one called {s:?} is enrolled")));
            }
            if let Some(e) = embedding {
                let d = gal.distance_to(&s, &e)?;
                return Ok(Json(json!({"subject": s, "threshold": t, "distance": d, "match": (d as f64) < t})));
            }
            let img = decode(&st2, &bytes, "image")?;
            let f = one_face(&st2, &img, &form, true)?;
            let mut out = json!({"subject": s, "face": face_json(&f.face), "threshold": t});
            if live_check {
                let (verdict, j) = liveness_json(&st2, &img, &f.face);
                out["liveness"] = j;
                if let Some(d) = verdict.refusal() {
                    out["decision"] = json!(d);
                    out["match"] = json!(false);
                    return Ok(Json(out));
                }
            }
            let d = gal.distance_to(&s, &f.embedding)?;
            let matched = (d as f64) < t;
            out["distance"] = json!(d);
            out["match"] = json!(matched);
            out["decision"] = json!(if matched { "match" } else { "no_match" });
            Ok(Json(out))
        })
        .await
}

/// `POST /v1/compare` (photos `a` and `b`, their largest faces; `metric`, `threshold`).
#[utoipa::path(post, path = "/v1/compare", tag = "recognition", request_body(content((crate::openapi::ComparePhotos = "multipart/form-data"), (crate::openapi::ComparePhotosJson = "application/json"))), responses((status = 200, body = crate::openapi::Compared)))]
pub async fn compare(State(st): S, c: Caller, req: Request) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let form = photo::read(req, &["a", "b"], st.config.max_body).await?;
    let metric = match form.fields.get("metric") {
        None => Metric::L2,
        Some(m) => m.parse::<Metric>().map_err(|_| ApiError::bad_request(format!("metric {m:?} must be l2, cosine or chi2")))?,
    };
    let given = threshold(&form)?;
    let (a, b) = (form.photo("a")?, form.photo("b")?);
    let st2 = st.clone();
    st.pool
        .run(move || {
            let one = |bytes: &[u8], field: &str| -> Result<FaceEmbedding, ApiError> {
                let img = decode(&st2, bytes, field)?;
                one_face(&st2, &img, &Form::default(), true).map_err(|e| ApiError { detail: format!("photo {field}: {}", e.detail), ..e })
            };
            let (fa, fb) = (one(&a, "a")?, one(&b, "b")?);
            let t = given.unwrap_or(st2.visage.descriptor().threshold(metric) as f64);
            let d = metric.distance(&fa.embedding, &fb.embedding);
            Ok(Json(json!({"distance": d, "metric": metric.name(), "threshold": t, "same_person": (d as f64) < t, "a": face_json(&fa.face), "b": face_json(&fb.face)})))
        })
        .await
}

/// `POST /v1/detect` (photo `image`): every face; none is an empty list, not an error.
#[utoipa::path(post, path = "/v1/detect", tag = "recognition", request_body(content((crate::openapi::PhotoForm = "multipart/form-data"), (crate::openapi::PhotoJson = "application/json"))), responses((status = 200, body = crate::openapi::Detected)))]
pub async fn detect(State(st): S, c: Caller, req: Request) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let form = photo::read(req, &["image"], st.config.max_body).await?;
    let bytes = form.photo("image")?;
    let st2 = st.clone();
    st.pool
        .run(move || {
            let img = decode(&st2, &bytes, "image")?;
            let faces = st2.visage.find_faces(&img)?;
            Ok(Json(json!({"width": img.width(), "height": img.height(), "faces": faces.iter().map(face_json).collect::<Vec<_>>()})))
        })
        .await
}

/// `POST /v1/liveness` (photo `image`): every face with its liveness verdict.
#[utoipa::path(post, path = "/v1/liveness", tag = "recognition", request_body(content((crate::openapi::PhotoForm = "multipart/form-data"), (crate::openapi::PhotoJson = "application/json"))), responses((status = 200, body = crate::openapi::LivenessResults)))]
pub async fn liveness(State(st): S, c: Caller, req: Request) -> Result<Json<Value>, ApiError> {
    c.require(Scope::Recognize)?;
    let form = photo::read(req, &["image"], st.config.max_body).await?;
    let bytes = form.photo("image")?;
    let st2 = st.clone();
    st.pool
        .run(move || {
            let img = decode(&st2, &bytes, "image")?;
            let faces = st2.visage.find_faces(&img)?;
            let out: Vec<Value> = faces
                .iter()
                .map(|f| {
                    let mut v = face_json(f);
                    v["liveness"] = liveness_json(&st2, &img, f).1;
                    v
                })
                .collect();
            Ok(Json(json!({ "faces": out })))
        })
        .await
}
