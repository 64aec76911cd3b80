/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchStatus sets obj's status with set and writes it with an optimistic
// lock (the patch carries obj's resourceVersion), skipping a write that
// changes nothing. When someone wrote the object meanwhile, it reads the
// object again and sets and writes the status again, as
// retry.RetryOnConflict does: a merge patch without the lock would
// silently overwrite what the other writer put in the status. One helper
// for both kinds.
func patchStatus[T client.Object](ctx context.Context, c client.Client, obj T, set func(T)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		orig := obj.DeepCopyObject().(T)
		set(obj)
		if equality.Semantic.DeepEqual(orig, obj) {
			return nil
		}
		err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) {
			if gerr := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); gerr != nil {
				return gerr
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}
