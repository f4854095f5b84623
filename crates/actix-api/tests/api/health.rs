use crate::helpers::TestApp;

async fn healthcheck_reports_ok_then_503_when_the_database_is_down(app: TestApp) {
    let ok = app.get("/api/v1/healthcheck", None).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["status"], "OK");
    assert!(ok.json["timeStamp"].is_string());
    assert_eq!(ok.json["services"]["database"]["status"], "OK");
    assert!(ok.json["services"]["database"]["details"].is_string());
    assert_eq!(ok.json["services"]["server"]["status"], "OK");
    assert!(ok.json["services"]["server"]["uptime"].is_number());
    assert!(ok.json["services"]["server"].get("memoryUsage").is_some());

    if app.break_store() {
        let down = app.get("/api/v1/healthcheck", None).await;
        assert_eq!(down.status, 503, "{}", down.text);
        assert_eq!(down.json["services"]["database"]["status"], "DOWN");
        assert_ne!(down.json["status"], "OK");
        assert!(down.json["timeStamp"].is_string());
        assert!(
            !down.text.to_lowercase().contains("unavailable:"),
            "{}",
            down.text
        );
    }
}

async fn storage_outage_on_a_normal_route_is_a_generic_5xx(app: TestApp) {
    let user = app.user("student").await;
    if !app.break_store() {
        return;
    }
    let resp = app.get("/api/v1/user/profile", Some(&user.token)).await;
    assert!(resp.status == 503 || resp.status == 500, "{}", resp.text);
    assert_eq!(resp.json["status"], "error");
    assert_eq!(resp.json["message"], lms_actix_api::error::GENERIC_5XX);
    assert!(
        !resp.text.to_lowercase().contains("storage"),
        "{}",
        resp.text
    );
    let courses = app.get("/api/v1/courses/published", None).await;
    assert!(courses.status >= 500);
    assert_eq!(courses.json["message"], lms_actix_api::error::GENERIC_5XX);
}

crate::per_wiring!(
    healthcheck_reports_ok_then_503_when_the_database_is_down,
    storage_outage_on_a_normal_route_is_a_generic_5xx
);
