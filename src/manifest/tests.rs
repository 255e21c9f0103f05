use super::*;

#[test]
fn smoke() {
    let m = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx}]\n", "pod.yaml").unwrap();
    assert_eq!(m.name(), "web");
}
