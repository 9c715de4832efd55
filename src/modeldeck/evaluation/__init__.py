"""Evaluation of loaded tasks on labelled data: COCO mAP (``coco``) and face-pair ROC (``faces``)."""
