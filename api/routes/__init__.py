"""HTTP routes: each translates a request into a service call and the result back."""
