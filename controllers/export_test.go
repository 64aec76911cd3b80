package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PatchStatus is patchStatus for the tests of package controllers_test.
func PatchStatus(ctx context.Context, c client.Client, obj client.Object, set func(client.Object)) error {
	return patchStatus(ctx, c, obj, set)
}
