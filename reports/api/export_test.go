package api

// Classify is classify, for the test that holds it to http.ServeContent.
var Classify = classify
