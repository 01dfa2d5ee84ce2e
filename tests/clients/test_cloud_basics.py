"""The running clouds answer the real clients: tokens, catalog, images, versions."""


def test_the_demo_user_gets_a_token_and_a_catalog_with_every_service(cloud):
    token = cloud.openstack("token", "issue")
    assert token["project_id"] and token["user_id"]
    catalog = {entry["Type"] for entry in cloud.openstack("catalog", "list")}
    assert {"compute", "image", "identity", "ec2"} <= catalog


def test_the_demo_image_is_listed_and_active(cloud):
    images = cloud.openstack("image", "list")
    demo = [i for i in images if i["Name"] == "demo-image"]
    assert demo and demo[0]["Status"] == "active"


def test_the_sdk_negotiates_the_compute_microversion(cloud):
    conn = cloud.sdk("demo")
    version = conn.compute.get_endpoint_data().max_microversion
    assert str(version) in ("(2, 79)", "2.79")
