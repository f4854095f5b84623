use crate::api::helpers::TestApp;
use serde_json::json;

async fn instructor_creates_a_course_with_exact_json_and_students_get_403(app: TestApp) {
    let instructor = app.user("instructor").await;
    let resp = app
        .post(
            "/api/v1/courses",
            Some(&instructor.token),
            &json!({"title": " Rust ", "description": "All of it", "category": "dev", "level": "beginner", "priceCents": 1999, "currency": "eur"}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    assert_eq!(resp.json["message"], "Course created successfully");
    let course = &resp.json["course"];
    assert_eq!(course["title"], "Rust");
    assert_eq!(course["priceCents"], 1999);
    assert_eq!(course["price"], 19.99);
    // The original backend's names: `_id` beside `id`, `instructor` beside `instructorId`.
    assert_eq!(course["_id"], course["id"]);
    assert_eq!(course["instructor"], course["instructorId"]);
    assert!(course["instructor"].is_string());
    assert_eq!(course["currency"], "EUR");
    assert_eq!(course["isPublished"], false);
    assert_eq!(course["instructorId"], instructor.id.as_str());
    for key in [
        "id",
        "subtitle",
        "description",
        "category",
        "level",
        "createdAt",
        "updatedAt",
    ] {
        assert!(course.get(key).is_some(), "{key} missing: {course}");
    }

    let student = app.user("student").await;
    let forbidden = app
        .post(
            "/api/v1/courses",
            Some(&student.token),
            &json!({"title": "Mine", "priceCents": 1999}),
        )
        .await;
    forbidden.assert_error(403, "FORBIDDEN");
    app.post(
        "/api/v1/courses",
        None,
        &json!({"title": "Mine", "priceCents": 1999}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

async fn invalid_course_input_is_a_validation_error_naming_the_field(app: TestApp) {
    let instructor = app.user("instructor").await;
    let cases = [
        (json!({"title": "", "priceCents": 1999}), "title"),
        (json!({"title": "T", "priceCents": 49}), "priceCents"),
        (json!({"title": "T", "priceCents": -5}), "priceCents"),
        (
            json!({"title": "T", "priceCents": 1999, "currency": "XXX"}),
            "currency",
        ),
    ];
    for (body, field) in cases {
        let resp = app
            .post("/api/v1/courses", Some(&instructor.token), &body)
            .await;
        resp.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(
            resp.json["errors"][0]["field"], field,
            "{body}: {}",
            resp.text
        );
    }
    // A string where a number belongs is a typed-field error too.
    let typed = app
        .post(
            "/api/v1/courses",
            Some(&instructor.token),
            &json!({"title": "T", "priceCents": "12.50"}),
        )
        .await;
    typed.assert_error(422, "VALIDATION_ERROR");
}

async fn only_the_owner_patches_and_unpublished_courses_stay_hidden(app: TestApp) {
    let owner = app.user("instructor").await;
    let other = app.user("instructor").await;
    let student = app.user("student").await;
    let course = app.create_course(&owner, 1999).await;
    let id = course["id"].as_str().unwrap();
    let path = format!("/api/v1/courses/{id}");

    app.get(&path, Some(&student.token))
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    app.get(&path, None)
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    assert_eq!(app.get(&path, Some(&owner.token)).await.status, 200);

    // Someone else's draft does not even exist for them.
    app.patch(&path, Some(&other.token), &json!({"isPublished": true}))
        .await
        .assert_error(404, "COURSE_NOT_FOUND");

    let published = app
        .patch(
            &path,
            Some(&owner.token),
            &json!({"isPublished": true, "priceCents": 2500}),
        )
        .await;
    assert_eq!(published.status, 200, "{}", published.text);
    assert_eq!(published.json["course"]["isPublished"], true);
    assert_eq!(published.json["course"]["priceCents"], 2500);
    app.patch(&path, Some(&other.token), &json!({"title": "Mine now"}))
        .await
        .assert_error(403, "FORBIDDEN");
    app.patch(&path, Some(&student.token), &json!({"isPublished": false}))
        .await
        .assert_error(403, "FORBIDDEN");
    let public = app.get(&path, None).await;
    assert_eq!(public.status, 200, "{}", public.text);
    assert_eq!(public.json["course"]["price"], 25.0);

    let unknown = format!("/api/v1/courses/{}", uuid::Uuid::new_v4());
    app.get(&unknown, None)
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    app.patch(&unknown, Some(&owner.token), &json!({"isPublished": true}))
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    let not_uuid = app.get("/api/v1/courses/not-a-uuid", None).await;
    assert!(
        not_uuid.status == 400 || not_uuid.status == 404,
        "{}",
        not_uuid.text
    );
    assert_eq!(not_uuid.json["success"], false);
}

async fn published_listing_paginates_and_hides_drafts(app: TestApp) {
    let owner = app.user("instructor").await;
    for _ in 0..3 {
        app.published_course(&owner, 1999).await;
    }
    app.create_course(&owner, 1999).await; // draft
    let page1 = app
        .get("/api/v1/courses/published?page=1&limit=2", None)
        .await;
    assert_eq!(page1.status, 200, "{}", page1.text);
    assert_eq!(page1.json["success"], true);
    assert_eq!(page1.json["data"].as_array().unwrap().len(), 2);
    let pagination = &page1.json["pagination"];
    assert_eq!(pagination["page"], 1);
    assert_eq!(pagination["limit"], 2);
    assert_eq!(pagination["total"], 3);
    assert_eq!(pagination["totalPages"], 2);
    let page2 = app
        .get("/api/v1/courses/published?page=2&limit=2", None)
        .await;
    assert_eq!(page2.json["data"].as_array().unwrap().len(), 1);
    let ids: Vec<_> = page1.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2.json["data"].as_array().unwrap())
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids
        .iter()
        .all(|id| ids.iter().filter(|other| *other == id).count() == 1));
    app.get("/api/v1/courses/published?page=abc", None)
        .await
        .assert_error(422, "VALIDATION_ERROR");
    app.get("/api/v1/courses/published?limit=-1", None)
        .await
        .assert_error(422, "VALIDATION_ERROR");
    // Empty parameters, as a form sends them, are the defaults.
    let blank = app
        .get("/api/v1/courses/published?page=&limit=", None)
        .await;
    assert_eq!(blank.status, 200, "{}", blank.text);
    assert_eq!(blank.json["pagination"]["page"], 1);
    assert_eq!(blank.json["pagination"]["limit"], 10);
    assert_eq!(blank.json["data"].as_array().unwrap().len(), 3);
}

async fn buyers_keep_an_unpublished_course_others_get_404(app: TestApp) {
    let owner = app.user("instructor").await;
    let buyer = app.user("student").await;
    let other = app.user("student").await;
    let id = app.published_course(&owner, 1999).await;
    app.buy(&buyer, &id).await;
    let path = format!("/api/v1/courses/{id}");
    let unpublished = app
        .patch(&path, Some(&owner.token), &json!({"isPublished": false}))
        .await;
    assert_eq!(unpublished.status, 200, "{}", unpublished.text);
    assert_eq!(unpublished.json["course"]["isPublished"], false);

    let course = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(course.status, 200, "{}", course.text);
    assert_eq!(course.json["course"]["id"], id.as_str());
    assert_eq!(course.json["course"]["isPublished"], false);
    let status = app.status_of(&buyer, &id).await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.json["data"]["course"]["id"], id.as_str());
    assert_eq!(status.json["data"]["isPurchased"], true);
    assert_eq!(status.json["data"]["purchaseStatus"], "completed");

    app.get(&path, Some(&other.token))
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    app.get(&path, None)
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    app.status_of(&other, &id)
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    app.checkout_raw(&other, &id)
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
}

crate::per_wiring!(
    instructor_creates_a_course_with_exact_json_and_students_get_403,
    invalid_course_input_is_a_validation_error_naming_the_field,
    only_the_owner_patches_and_unpublished_courses_stay_hidden,
    published_listing_paginates_and_hides_drafts,
    buyers_keep_an_unpublished_course_others_get_404
);
